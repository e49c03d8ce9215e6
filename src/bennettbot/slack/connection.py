"""The bot role's connection to Slack: Socket Mode, start-up chores, the
check file.

Socket Mode acks Events API envelopes as soon as they are read: slack-bolt's
handler runs the whole middleware chain for an envelope before acking it, and
slack_sdk starts one task per envelope, so in a burst every ack would wait for
the whole burst's dispatch (180 to 340 ms p99 for 500 mentions, measured; see
bench/README.md). Events API acks carry no payload, so this handler acks them
at once and feeds bolt from a queue, one envelope per loop turn. Other
envelope types (slash commands, interactivity) keep bolt's own ack, which may
carry a response payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import aiohttp
import structlog
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from ..confirmations import Confirmations
from ..models import Clock, StartupError
from ..responder import Responder
from ..store import Store
from .directory import ensure_member
from .listeners import (
    BotIdentity,
    SlackHandlers,
    build_app,
    identify,
    join_public_channels,
)

log = structlog.get_logger("bot")
T = TypeVar("T")
EVENTS_KEPT = timedelta(days=1)  # Slack retries an event for a few minutes
PRUNE_EVERY = 3600.0  # seconds
EXPIRY_LOOK = 60.0  # seconds between looks for unanswered confirmations, at most


class QuickAckSocketModeHandler(AsyncSocketModeHandler):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pending: asyncio.Queue[SocketModeRequest] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None

    # bolt's own handler narrows the client type the same way (and says so)
    async def handle(  # type: ignore[override]
        self, client: SocketModeClient, req: SocketModeRequest
    ) -> None:
        if req.type != "events_api":
            await super().handle(client, req)
            return
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id)
        )
        self._pending.put_nowait(req)

    async def _dispatch(self) -> None:
        while True:
            req = await self._pending.get()
            try:
                await run_async_bolt_app(self.app, req)
            except Exception:  # bolt's own error handler has run; keep going
                log.exception("dispatch_failed", envelope_id=req.envelope_id)
            await asyncio.sleep(0)  # let the socket be read between envelopes

    async def connect_async(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="bolt")
        await super().connect_async()

    async def close_async(self) -> None:
        await super().close_async()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None


async def run_bot(
    client: AsyncWebClient,
    *,
    app_token: str,
    signing_secret: str,
    tech_support_channel: str,
    logs_channel: str = "",
    bot_name: str = "",
    check_file: Path,
    responder: Responder,
    store: Store,
    clock: Clock,
    stop: asyncio.Event,
    process_before_response: bool = False,
    ping_interval: float = 10.0,
    confirmations: Confirmations | None = None,
) -> None:
    """Connect to Slack and handle events until ``stop`` is set.

    ``check_file`` is removed at once and created when the connection is up,
    so a healthcheck can tell a bot that started from one that is starting.
    """
    _remove(check_file)

    async def chores() -> tuple[BotIdentity, str, int]:
        identity = await identify(client)  # also warms the authorization
        support_channel = await ensure_member(
            client, "SLACK_TECH_SUPPORT_CHANNEL", tech_support_channel, bot_name
        )
        if logs_channel:
            await ensure_member(client, "SLACK_LOGS_CHANNEL", logs_channel, bot_name)
        return identity, support_channel, await join_public_channels(client)

    started = await _until_slack_answers(chores, stop)
    if started is None:
        return  # stopped while Slack was away
    identity, support_channel, joined = started
    handlers = SlackHandlers(
        client, identity, responder, store, clock, support_channel, confirmations
    )
    await _forget_old_events(store, clock)

    async def first_event(event_id: str) -> bool:
        return await store.first_event(event_id, clock.now())

    app = build_app(
        client,
        identity,
        handlers,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        first_event=first_event,
    )
    # ping_interval: how soon a silently dropped socket is noticed and reopened
    handler = QuickAckSocketModeHandler(app, app_token, ping_interval=ping_interval)
    await handler.connect_async()
    _create(check_file)
    log.info("connected", bot=identity.name, user_id=identity.user_id, joined=joined)
    expiring = asyncio.create_task(_expire_questions(handlers, clock, stop))
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PRUNE_EVERY):
                    await stop.wait()
            await _forget_old_events(store, clock)
    finally:
        expiring.cancel()
        await asyncio.gather(expiring, return_exceptions=True)
        await handler.close_async()
        log.info("disconnected")


async def _expire_questions(
    handlers: SlackHandlers, clock: Clock, stop: asyncio.Event
) -> None:
    """Edit confirmations nobody answered in time, as their time comes (or
    when ``Confirmations.wake()`` says to look again)."""
    confirmations = handlers.confirmations
    if confirmations is None:
        return
    while not stop.is_set():
        confirmations.changed.clear()
        wait = EXPIRY_LOOK
        try:
            await handlers.expire_questions()
            if (due := await confirmations.next_expiry()) is not None:
                wait = min(wait, max(0.0, (due - clock.now()).total_seconds()))
        except (sqlite3.Error, SlackApiError, aiohttp.ClientError) as exc:
            log.warning("expiring_questions_failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await confirmations.changed.wait()


async def _until_slack_answers(
    chores: Callable[[], Awaitable[T]], stop: asyncio.Event
) -> T | None:
    """Run ``chores``, again and again while Slack is unreachable or failing
    (an outage at start is waited out, not fatal); None if ``stop`` is set
    first. Anything else (a bad token, a missing channel) is raised."""
    delay = 1.0
    while True:
        try:
            return await chores()
        except (aiohttp.ClientError, TimeoutError, SlackApiError) as exc:
            if isinstance(exc, SlackApiError) and not _transient(exc):
                error = exc.response.get("error", "an error")
                raise StartupError(
                    f"SLACK_BOT_TOKEN: Slack answered {error!r} at start "
                    f"({_method(exc)}): check the token and the app's scopes"
                ) from None
            log.warning("slack_unavailable_at_start", error=repr(exc), retry_in=delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
                return None
        delay = min(delay * 2, 30.0)


async def _forget_old_events(store: Store, clock: Clock) -> None:
    try:
        await store.forget_events(clock.now() - EVENTS_KEPT)
    except sqlite3.Error as exc:  # a busy database: next time
        log.warning("forget_events_failed", error=str(exc))


def _method(exc: SlackApiError) -> str:
    url = str(getattr(exc.response, "api_url", ""))
    return url.rsplit("/", 1)[-1] or "a Web API call"


def _transient(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 200)
    return status == 429 or status >= 500


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
