"""The Slack listeners (slack-bolt, async). Raw Slack dicts stop here.

Mentions and direct messages become commands for the ``Responder``; channel
messages with the word ``tech-support`` become support requests. Every
listener runs after bolt has acked the envelope; per-envelope work before the
ack is one dictionary look-up (the duplicate check) and a cached
authorization.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .. import commands, messages
from ..confirmations import CANCEL, RUN, Confirmations
from ..models import Clock, Requester
from ..responder import Responder
from ..store import Store
from .notifier import Attachment, send, upload

log = structlog.get_logger("slack")
ACCEPTED_REACTION = "white_check_mark"
SUPPORT_REACTION = "sos"
ERROR_REACTION = "x"
SEEN_EVENTS = 10_000
SLACKBOT = "USLACKBOT"  # the author of reminders
# Message subtypes that are a person's own plain message (not bots, not edits)
PLAIN_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})
GUEST_CACHE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class BotIdentity:
    user_id: str
    bot_id: str
    team_id: str
    name: str
    url: str = ""  # the workspace's, e.g. https://team.slack.com/


async def identify(client: AsyncWebClient) -> BotIdentity:
    """Who the bot is, from ``auth.test`` (called once, at start)."""
    found = await client.auth_test()
    return BotIdentity(
        user_id=found["user_id"],
        bot_id=found.get("bot_id", ""),
        team_id=found.get("team_id", ""),
        name=found.get("user", ""),
        url=found.get("url", ""),
    )


async def join_public_channels(client: AsyncWebClient) -> int:
    """Join every public channel the bot is not in; how many it joined."""
    joined = 0
    async for page in await client.conversations_list(
        types="public_channel", exclude_archived=True, limit=200
    ):
        for channel in page["channels"]:
            if channel.get("is_member"):
                continue
            try:
                await client.conversations_join(channel=channel["id"])
                joined += 1
            except SlackApiError as exc:  # one channel must not stop the bot
                log.warning("join_failed", channel=channel["id"], error=str(exc))
    return joined


@dataclass(frozen=True, slots=True)
class Person:
    name: str  # the display name, else the user name, else the id
    guest: bool  # a Slack guest (single- or multi-channel)


class People:
    """Who Slack users are (``users.info``), remembered for an hour.

    Concurrent questions about one user share a single ``users.info`` call.
    """

    def __init__(self, client: AsyncWebClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._known: dict[str, tuple[Person, float]] = {}
        self._asking: dict[str, asyncio.Future[Person]] = {}

    async def is_guest(self, user: str) -> bool:
        return (await self.person(user)).guest

    async def names(self, users: Iterable[str]) -> dict[str, str]:
        """Each user's name; a user Slack cannot tell about keeps the id."""
        wanted = sorted(set(users))
        found = await asyncio.gather(
            *(self.person(user) for user in wanted), return_exceptions=True
        )
        return {
            user: person.name if isinstance(person, Person) else user
            for user, person in zip(wanted, found, strict=True)
        }

    async def person(self, user: str) -> Person:
        now = self._clock.now().timestamp()
        cached = self._known.get(user)
        if cached is not None and now - cached[1] < GUEST_CACHE_SECONDS:
            return cached[0]
        if (pending := self._asking.get(user)) is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._asking[user] = pending
        try:
            info = (await self._client.users_info(user=user))["user"]
            person = Person(
                name=(info.get("profile") or {}).get("display_name")
                or info.get("name")
                or user,
                guest=bool(
                    info.get("is_restricted") or info.get("is_ultra_restricted")
                ),
            )
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved here; waiters still get it
            raise
        finally:
            del self._asking[user]
        self._known[user] = (person, now)
        pending.set_result(person)
        return person


class SlackHandlers:
    """What the bot does with each kind of event."""

    def __init__(
        self,
        client: AsyncWebClient,
        identity: BotIdentity,
        responder: Responder,
        store: Store,
        clock: Clock,
        tech_support_channel: str,
        confirmations: Confirmations | None = None,
    ) -> None:
        self.confirmations = confirmations
        self._client = client
        self._identity = identity
        self._responder = responder
        self._store = store
        self._clock = clock
        self._tech_support_channel = tech_support_channel
        self._people = People(client, clock)

    async def on_mention(self, event: dict[str, Any]) -> None:
        if event.get("edited") or not event.get("user") or event.get("bot_id"):
            return  # an edit must not run a command again; bots don't command
        text = event.get("text", "")
        if commands.is_support_request(text):
            return  # its `message` twin is the support request
        addressed = commands.addressed_text(text, self._identity.user_id, is_im=False)
        if addressed is not None:
            await self._command(event, addressed, is_im=False)

    async def on_message(self, event: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            message = {**event.get("message", {}), "channel": event.get("channel")}
        elif subtype in PLAIN_SUBTYPES:
            message = event
        else:
            return
        if message.get("bot_id") or message.get("user") == self._identity.user_id:
            return
        if not message.get("user") or not message.get("channel"):
            return
        text = message.get("text", "")
        channel_type = event.get("channel_type") or _channel_type(message["channel"])
        if channel_type == "mpim":  # a group DM: no support requests there
            if subtype != "message_changed" and commands.is_support_request(text):
                await self._reply(message, messages.SUPPORT_FROM_DM)
            return
        if channel_type == "im":
            if subtype == "message_changed":
                return
            if commands.is_support_request(text):
                await self._reply(message, messages.SUPPORT_FROM_DM)
                return
            addressed = commands.addressed_text(
                text, self._identity.user_id, is_im=True
            )
            await self._command(message, addressed or "", is_im=True)
        elif commands.is_support_request(text):
            await self._support_request(message)

    async def on_channel_created(self, event: dict[str, Any]) -> None:
        await self._client.conversations_join(channel=event["channel"]["id"])

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """A listener failed: mark the message and say so in its thread."""
        event = body.get("event") or {}
        log.error("listener_failed", error=repr(error), event_type=event.get("type"))
        if event.get("subtype") == "message_changed":  # the edited message
            event = {**event.get("message", {}), "channel": event.get("channel")}
        if event.get("channel") and event.get("ts"):
            try:
                await self._react(event, ERROR_REACTION)
            finally:
                await self._reply(event, messages.listener_failed(error))

    async def _command(self, event: dict[str, Any], text: str, *, is_im: bool) -> None:
        user = event.get("user", "")
        requester = Requester(
            user=user,
            channel=event["channel"],
            thread_ts=event.get("thread_ts") or event["ts"],
            is_im=is_im,
        )
        cleaned = commands.clean(text)

        async def is_guest() -> bool:  # asked only for restricted commands
            if user == SLACKBOT:
                # a reminder: whoever set it up is not in the event, so it
                # may run only what anyone may
                return True
            return await self._people.is_guest(user)

        reply = await self._responder.respond(
            cleaned,
            requester,
            is_guest=is_guest,
            names=self._people.names,
            workspace_url=self._identity.url,
        )
        if reply.accepted:
            await self._react(event, ACCEPTED_REACTION)
        if reply.file is not None:
            await upload(
                self._client,
                event["channel"],
                Attachment(reply.file.name, reply.file.content, reply.text),
                thread_ts=event.get("thread_ts") or event["ts"],
            )
        elif reply.blocks is not None:
            sent = await send(
                self._client,
                event["channel"],
                reply.text,
                thread_ts=event.get("thread_ts") or event["ts"],
                blocks=reply.blocks,
                instead=Attachment("reply.txt", reply.text, reply.text[:200]),
            )
            if reply.confirmation is not None and self.confirmations is not None:
                await self.confirmations.asked(
                    reply.confirmation, sent.channel, sent.ts
                )
        elif reply.text:
            await self._reply(event, reply.text)

    async def on_home_opened(self, event: dict[str, Any]) -> None:
        """Publish the Home tab for whoever opened it."""
        user = event.get("user", "")
        if not user or event.get("tab", "home") != "home":
            return  # the Messages tab opens with this event too

        async def is_guest() -> bool:
            return await self._people.is_guest(user)

        view = await self._responder.home(is_guest=is_guest, names=self._people.names)
        await self._client.views_publish(user_id=user, view=view)

    async def on_button(self, body: dict[str, Any]) -> None:
        """Run or Cancel pressed on a confirmation's question."""
        if self.confirmations is None:
            return
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel, ts = container.get("channel_id", ""), container.get("message_ts", "")
        [action] = body.get("actions") or [{}]
        value = str(action.get("value", ""))
        if not (user and channel and ts and value.isdigit()):
            return
        guest = user == SLACKBOT or await self._people.is_guest(user)
        pressed = await self.confirmations.press(
            int(value), action.get("action_id", ""), user, guest
        )
        if pressed.text:
            await self._edit_question(channel, ts, pressed.text)
        if pressed.ephemeral:
            await self._client.chat_postEphemeral(
                channel=channel, user=user, text=pressed.ephemeral
            )

    async def expire_questions(self) -> None:
        """Take the buttons off questions nobody answered in time."""
        if self.confirmations is None:
            return
        for expired in await self.confirmations.expire_due():
            found = expired.confirmation
            if found.channel and found.ts:
                await self._edit_question(found.channel, found.ts, expired.text)

    async def _edit_question(self, channel: str, ts: str, text: str) -> None:
        section = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
        await self._client.chat_update(
            channel=channel, ts=ts, text=text, blocks=[section]
        )

    async def _support_request(self, message: dict[str, Any]) -> None:
        channel, ts = message.get("channel", ""), message.get("ts", "")
        if not channel or not ts or channel == self._tech_support_channel:
            return
        await self._react(message, SUPPORT_REACTION)
        if not await self._store.mark_reposted(channel, ts, self._clock.now()):
            return  # an edit of a request that was reposted already
        found = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        await self._client.chat_postMessage(
            channel=self._tech_support_channel,
            text=messages.support_repost(found["permalink"]),
        )
        period = await self._store.out_of_office()
        today = self._clock.now().date()
        if period is not None and period[0] <= today <= period[1]:
            await self._reply(message, messages.out_of_office_reply(period[1]))

    async def _react(self, event: dict[str, Any], name: str) -> None:
        try:
            await self._client.reactions_add(
                channel=event["channel"], timestamp=event["ts"], name=name
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":
                raise

    async def _reply(self, event: dict[str, Any], text: str) -> None:
        """Reply in the event's thread (as a file when too long for a message)."""
        await send(
            self._client,
            event["channel"],
            text,
            thread_ts=event.get("thread_ts") or event["ts"],
            instead=Attachment("reply.txt", text, messages.message_attached(len(text))),
        )


def build_app(
    client: AsyncWebClient,
    identity: BotIdentity,
    handlers: SlackHandlers,
    *,
    signing_secret: str = "",
    process_before_response: bool = False,
    first_event: Callable[[str], Awaitable[bool]] | None = None,
) -> AsyncApp:
    """The bolt app: listeners wired to ``handlers``; authorization cached.

    ``first_event`` says whether an ``event_id`` is new to every bot process
    (the store keeps them); without it, only this process's memory counts.
    """
    cached = AuthorizeResult(
        enterprise_id=None,
        team_id=identity.team_id,
        bot_user_id=identity.user_id,
        bot_id=identity.bot_id,
        bot_token=client.token,
    )

    async def authorize(**_: object) -> AuthorizeResult:
        return cached

    # bolt makes each request's client from the authorize result; its own
    # client only needs the base URL (Socket Mode's apps.connections.open
    # passes the app token itself), so it carries no token.
    bolt_client = AsyncWebClient(
        base_url=client.base_url,
        session=client.session,
        retry_handlers=list(client.retry_handlers),
    )
    app = AsyncApp(
        client=bolt_client,
        authorize=authorize,
        signing_secret=signing_secret or None,
        process_before_response=process_before_response,
        request_verification_enabled=False,  # Socket Mode: no HTTP requests
        logger=None,
    )
    app.middleware(_once_per_event(first_event))

    @app.event("app_mention")
    async def mention(event: dict[str, Any]) -> None:
        await handlers.on_mention(event)

    @app.event("message")
    async def message(event: dict[str, Any]) -> None:
        await handlers.on_message(event)

    @app.action(re.compile(f"^({RUN}|{CANCEL})$"))
    async def button(ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()  # within Slack's 3 s, before anything slow
        await handlers.on_button(body)

    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        await handlers.on_home_opened(event)

    @app.event("channel_created")
    async def channel_created(event: dict[str, Any]) -> None:
        await handlers.on_channel_created(event)

    @app.event(re.compile(".*"))
    async def anything_else() -> None:
        """Ack events the bot has no use for, so Slack does not redeliver them."""

    @app.error
    async def error(error: Exception, body: dict[str, Any]) -> None:
        try:
            await handlers.on_error(error, body)
        except Exception:  # the error handler must never fail itself
            log.exception("error_report_failed")

    return app


def _once_per_event(
    first_event: Callable[[str], Awaitable[bool]] | None,
) -> Callable[..., Awaitable[Any]]:
    """Middleware: a redelivered event (same ``event_id``) is acked, handled
    once, whichever bot process it reaches (a deploy overlaps two)."""
    seen: OrderedDict[str, None] = OrderedDict()

    async def once_per_event(
        body: dict[str, Any], next: Callable[[], Awaitable[Any]]
    ) -> Any:
        event_id = body.get("event_id")
        if event_id:
            if event_id in seen:
                return BoltResponse(status=200, body="")
            seen[event_id] = None
            if len(seen) > SEEN_EVENTS:
                seen.popitem(last=False)
            if first_event is not None and not await first_event(event_id):
                return BoltResponse(status=200, body="")
        return await next()

    return once_per_event


def _channel_type(channel_id: str) -> str:
    """Slack's ``channel_type`` from an id, for events that lack the field."""
    return {"D": "im", "G": "group"}.get(channel_id[:1], "channel")
