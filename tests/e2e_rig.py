"""The bot and dispatcher roles running against the Slack emulator, for
end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bennettbot.app import Engine, open_engine, run_roles
from bennettbot.emulator import SlackEmulator
from bennettbot.models import FakeClock
from bennettbot.settings import load_settings
from conftest import wait_until


@dataclass
class Bot:
    slack: SlackEmulator
    engine: Engine
    tmp: Path
    clock: FakeClock


@asynccontextmanager
async def running_bot(
    slack: SlackEmulator, tmp: Path, **settings: object
) -> AsyncIterator[Bot]:
    """Start the bot and dispatcher roles; ``settings`` add to or override the
    test defaults. The clock moves only when a test says so."""
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_APP_USERNAME": "bennettbot",
        "SLACK_LOGS_CHANNEL": "#logs",
        "SLACK_TECH_SUPPORT_CHANNEL": "#tech-support",
        "SLACK_API_URL": slack.api_url,
        "DB_PATH": tmp / "bot.db",
        "LOGS_DIR": tmp / "logs",
        "HOST_LOGS_DIR": "/srv/bot/logs",
        "FAB_WORKSPACE_DIR": tmp / "fab",
        "BOT_CHECK_FILE": tmp / "check",
        "WEBHOOK_ORIGIN": "http://127.0.0.1:9",
        **settings,
    }
    stop = asyncio.Event()
    clock = FakeClock(datetime.now(UTC))
    async with open_engine(load_settings(**values), clock=clock) as engine:
        roles = asyncio.create_task(
            run_roles(engine, {"bot", "dispatcher"}, stop, ping_interval=0.5)
        )
        await slack.wait_for_connection(timeout=10)
        await wait_until((tmp / "check").exists, 10)
        try:
            yield Bot(slack, engine, tmp, clock)
        finally:
            stop.set()
            await asyncio.wait_for(roles, 15)
