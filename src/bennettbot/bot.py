"""The bot role: Socket Mode connection, startup chores and the check file."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from .models import Clock
from .responder import Responder
from .slack_app import SlackHandlers, build_app, identify, join_public_channels
from .slack_lookup import channel_id
from .socket_mode import QuickAckSocketModeHandler
from .store import Store

log = structlog.get_logger("bot")


async def run_bot(
    client: AsyncWebClient,
    *,
    app_token: str,
    signing_secret: str,
    tech_support_channel: str,
    check_file: Path,
    responder: Responder,
    store: Store,
    clock: Clock,
    stop: asyncio.Event,
    process_before_response: bool = False,
    ping_interval: float = 10.0,
) -> None:
    """Connect to Slack and handle events until ``stop`` is set.

    ``check_file`` is removed at once and created when the connection is up,
    so a healthcheck can tell a bot that started from one that is starting.
    """
    _remove(check_file)
    identity = await identify(client)  # also warms the authorization
    support_channel = await channel_id(client, tech_support_channel)
    joined = await join_public_channels(client)
    handlers = SlackHandlers(client, identity, responder, store, clock, support_channel)
    app = build_app(
        client,
        identity,
        handlers,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
    )
    # ping_interval: how soon a silently dropped socket is noticed and reopened
    handler = QuickAckSocketModeHandler(app, app_token, ping_interval=ping_interval)
    await handler.connect_async()
    _create(check_file)
    log.info("connected", bot=identity.name, user_id=identity.user_id, joined=joined)
    try:
        await stop.wait()
    finally:
        await handler.close_async()
        log.info("disconnected")


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
