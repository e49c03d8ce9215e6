"""`SlackEmulator`: the server, and a driver API that speaks in plain terms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from .events import (
    app_mention_event,
    block_actions,
    channel_created_event,
    event_callback,
    events_for_message,
    message_changed_event,
)
from .socketmode import Ack, Connection, Envelope, SocketModeServer
from .state import JSON, MAX_TEXT, Channel, Ephemeral, Message, User, Workspace
from .webapi import Call, WebApi

T = TypeVar("T")

# Fake tokens the emulator accepts; not secrets.
BOT_TOKEN = "xoxb-emulated-bot-token"  # noqa: S105
APP_TOKEN = "xapp-emulated-app-token"  # noqa: S105


class SlackEmulator:
    """A Slack workspace on loopback for the real slack_sdk / slack_bolt clients.

    Point `AsyncWebClient(base_url=slack.api_url)` at it (`SLACK_API_URL`);
    Socket Mode follows through `apps.connections.open`.
    """

    def __init__(
        self,
        workspace: Workspace | None = None,
        *,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        echo_bot_messages: bool = True,
    ) -> None:
        self.workspace = workspace or Workspace.default()
        self.bot_token = bot_token
        self.app_token = app_token
        self.echo_bot_messages = echo_bot_messages  # deliver the bot's own posts
        self.calls: list[Call] = []
        self.ephemerals: list[Ephemeral] = []  # what chat.postEphemeral showed
        self.home_views: dict[str, JSON] = {}  # user id -> published Home tab
        self.url = ""
        self._host, self._port = host, port
        self._waiters: set[asyncio.Future[None]] = set()
        self._wake_scheduled = False
        self._runner: web.AppRunner | None = None
        self.socket = SocketModeServer(self.workspace.app_id, self.changed)
        self.api = WebApi(self)

    # lifecycle

    async def start(self) -> SlackEmulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.api.install(app)
        app.router.add_get("/link/", self.socket.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}"
        return self

    async def stop(self) -> None:
        self.socket.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """The Web API base URL (`SLACK_API_URL`), with its trailing slash."""
        return f"{self.url}/api/"

    @property
    def bot(self) -> User:
        return self.workspace.bot

    # internals shared with the web API

    def changed(self) -> None:
        """Note a change: waiters re-check their predicates (once per loop
        iteration, however many changes it saw)."""
        if self._waiters and not self._wake_scheduled:
            self._wake_scheduled = True
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_scheduled = False
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _deliver(self, events: list[JSON]) -> list[Envelope]:
        if not events:
            self.changed()
            return []
        items = [("events_api", event_callback(self.workspace, e)) for e in events]
        return await self.socket.deliver(items)

    async def bot_message_added(self, message: Message) -> None:
        if self.echo_bot_messages:
            await self._deliver(events_for_message(self.workspace, message))
        else:
            self.changed()

    async def apply_edit(
        self, message: Message, editor: str, text: str, blocks: list[JSON] | None
    ) -> None:
        ws = self.workspace
        previous = ws.message_payload(message)
        edit_ts = ws.next_ts()
        message.text, message.blocks = text[:MAX_TEXT], blocks
        message.edited = {"user": editor, "ts": edit_ts}
        in_channel = ws.bot.id in ws.channels[message.channel].members
        if in_channel and (message.user != ws.bot.id or self.echo_bot_messages):
            events = [message_changed_event(ws, message, previous, edit_ts)]
            channel = ws.channels[message.channel]
            if ws.bot.id in message.mentions() and not channel.is_im:
                # Slack sends the mention again, marked `edited`
                events.insert(0, app_mention_event(ws, message))
            await self._deliver(events)
        else:
            self.changed()

    def _channel(self, ref: str) -> Channel:
        return self.workspace.channel(ref)

    # driving: what people in the workspace do

    async def post(
        self, user: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """`user` (name or id) posts `text` in `channel` (name, `#name` or id),
        in a thread when `thread_ts` is given. Delivers what Slack would: for a
        mention in a channel both `app_mention` and `message`; in a DM one
        `message` (channel_type `im`); nothing where the bot is not a member.
        """
        ws = self.workspace
        author, where = ws.user(user), self._channel(channel)
        if author.id not in where.members:
            if where.is_private or where.is_im:
                raise ValueError(f"{author.name} is not in {channel}")
            where.members.add(author.id)
        message = ws.new_user_message(author, where, text, thread_ts)
        await self._deliver(events_for_message(ws, message))
        return message

    async def dm(
        self, user: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """`user` sends the bot a direct message."""
        dm = self.workspace.dm_with(self.workspace.user(user).id)
        return await self.post(user, dm.id, text, thread_ts=thread_ts)

    async def edit(self, user: str, channel: str, ts: str, text: str) -> Message:
        """`user` edits their message: a `message_changed` event."""
        author = self.workspace.user(user)
        message = self.message(channel, ts)
        if message.user != author.id:
            raise ValueError(f"{author.name} did not write message {ts}")
        await self.apply_edit(message, author.id, text, message.blocks)
        return message

    async def post_as_bot(
        self,
        channel: str,
        text: str,
        *,
        bot: str = "otherbot",
        thread_ts: str | None = None,
        as_app: bool = False,
    ) -> Message:
        """Another bot posts: subtype `bot_message` with its `bot_id` (or, with
        `as_app`, an app's message: its bot user, `bot_id`, no subtype)."""
        ws = self.workspace
        sender, where = ws.user(bot), self._channel(channel)
        message = ws.add_message(
            Message(
                channel=where.id,
                ts=ws.next_ts(),
                user=sender.id if as_app else None,
                text=text,
                thread_ts=thread_ts,
                subtype=None if as_app else "bot_message",
                bot_id=sender.bot_id,
                app_id=sender.app_id if as_app else None,
                username=None if as_app else sender.name,
            )
        )
        await self._deliver(events_for_message(ws, message))
        return message

    async def react(self, user: str, channel: str, ts: str, name: str) -> bool:
        """`user` adds reaction `name`; False when they already had."""
        message = self.message(channel, ts)
        added = self.workspace.add_reaction(message, name, self.workspace.user(user).id)
        self.changed()
        return added

    async def create_channel(
        self,
        name: str,
        *,
        creator: str = "alice",
        private: bool = False,
        members: tuple[str, ...] = (),
    ) -> Channel:
        """A new channel (the bot not in it); a public one sends `channel_created`."""
        ws = self.workspace
        channel = ws.create_channel(
            name,
            creator=ws.user(creator).id,
            is_private=private,
            members=[ws.user(m).id for m in members],
        )
        await self._deliver([] if private else [channel_created_event(channel)])
        return channel

    async def press(self, user: str, channel: str, ts: str, action_id: str) -> Envelope:
        """`user` presses the button `action_id` of message `ts`: a
        `block_actions` interactive payload, over Socket Mode as Slack sends
        it."""
        ws = self.workspace
        presser, message = ws.user(user), self.message(channel, ts)
        for block in message.blocks or []:
            for element in block.get("elements", []):
                if element.get("action_id") == action_id:
                    break
            else:
                continue
            break
        else:
            raise ValueError(f"message {ts} has no button {action_id!r}")
        payload = block_actions(ws, presser, message, block, element)
        (envelope,) = await self.socket.deliver([("interactive", payload)])
        return envelope

    async def open_home(self, user: str) -> Envelope:
        """`user` opens the bot's Home tab: an `app_home_opened` event."""
        person = self.workspace.user(user)
        dm = self.workspace.dm_with(person.id)
        event = {
            "type": "app_home_opened",
            "user": person.id,
            "channel": dm.id,
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        return await self.send_event(event)

    async def send_event(self, event: JSON) -> Envelope:
        """Deliver any Events API `event` (wrapped in `event_callback`)."""
        (envelope,) = await self._deliver([event])
        return envelope

    # looking: what the workspace now holds

    def message(self, channel: str, ts: str) -> Message:
        found = self.workspace.find_message(self._channel(channel).id, ts)
        if found is None:
            raise KeyError(f"no message {ts} in {channel}")
        return found

    def messages(self, channel: str) -> list[Message]:
        """Every message in `channel`, thread replies included, oldest first."""
        return list(self.workspace.messages[self._channel(channel).id])

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The thread's parent followed by its replies."""
        return self.workspace.thread(self._channel(channel).id, thread_ts)

    def replies(
        self, channel: str, thread_ts: str, *, user: str | None = None
    ) -> list[Message]:
        """The replies in a thread (not its parent), optionally by one user."""
        uid = self.workspace.user(user).id if user else None
        return [
            m
            for m in self.thread(channel, thread_ts)
            if m.ts != thread_ts and (uid is None or m.user == uid)
        ]

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        """Reaction name -> ids of the users who added it."""
        return {k: list(v) for k, v in self.message(channel, ts).reactions.items()}

    def permalink(self, channel: str, ts: str) -> str:
        return self.workspace.permalink(self.message(channel, ts))

    def file_content(self, file_id: str) -> bytes | None:
        return self.workspace.files[file_id].content

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    @property
    def envelopes(self) -> list[Envelope]:
        return list(self.socket.envelopes.values())

    @property
    def acks(self) -> list[Ack]:
        return list(self.socket.acks)

    @property
    def connections(self) -> list[Connection]:
        return list(self.socket.connections)

    def envelopes_for(self, message: Message) -> list[Envelope]:
        """Envelopes whose event is about `message` (new or changed)."""
        return [
            e
            for e in self.socket.envelopes.values()
            if e.event.get("channel") == message.channel
            and message.ts in (e.event.get("ts"), e.event.get("message", {}).get("ts"))
        ]

    # waiting

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0
    ) -> T:
        """Wait until `predicate()` is truthy (checked on every change); return it."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while not (result := predicate()):
                    waiter = loop.create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)
                assert result is not None  # truthy
                return result
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout} s") from None

    async def wait_for_reply(
        self,
        channel: str,
        thread_ts: str,
        *,
        user: str | None = None,
        contains: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
    ) -> Message:
        """The `count`-th reply in the thread by `user` (default: the bot)
        whose text contains `contains`."""

        def found() -> Message | None:
            matching = [
                m
                for m in self.replies(channel, thread_ts, user=user or self.bot.id)
                if contains is None or contains in m.text
            ]
            return matching[count - 1] if len(matching) >= count else None

        return await self.wait_for(found, timeout)

    async def wait_for_connection(
        self, count: int = 1, timeout: float = 5.0
    ) -> Connection:
        """Wait until `count` connections have been opened and the newest has
        had its `hello`; return that one."""

        def ready() -> Connection | None:
            conns = self.socket.connections
            if len(conns) >= count and conns[-1].open and conns[-1].ready:
                return conns[-1]
            return None

        return await self.wait_for(ready, timeout)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        return await self.wait_for(
            lambda: self.socket.envelopes[envelope_id].ack, timeout
        )

    # faults

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with `status` (429 carries
        `Retry-After`; 5xx engage the client's server-error retry) or, with
        status 200, with `{"ok": false, "error": error}`. `method` may also be
        `"upload_url"` for the file upload POST."""
        for _ in range(times):
            self.api.fail_next(method, status, retry_after, error)

    async def drop_socket(self, *, graceful: bool = False) -> int:
        """Cut every Socket Mode connection (abruptly unless `graceful`)."""
        return await self.socket.drop(graceful=graceful)

    async def send_disconnect(self, reason: str = "refresh_requested") -> bool:
        """Send `{"type": "disconnect"}` to the newest connection."""
        return await self.socket.send_disconnect(reason)

    async def redeliver(
        self, envelope_id: str, reason: str = "timeout", *, elsewhere: bool = False
    ) -> Envelope:
        """Deliver an envelope's payload again with `retry_attempt` + 1; with
        `elsewhere`, to another connection than the original's."""
        return await self.socket.redeliver(envelope_id, reason, elsewhere=elsewhere)
