"""The bot and dispatcher roles running against the Slack emulator, for
end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bennettbot.app import Engine
from bennettbot.emulator import SlackEmulator
from bennettbot.emulator.harness import emulator_settings, running_roles
from bennettbot.models import FakeClock
from bennettbot.settings import load_settings


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
        **emulator_settings(slack, tmp),
        "HOST_LOGS_DIR": "/srv/bot/logs",
        "WEBHOOK_ORIGIN": "http://127.0.0.1:9",
        **settings,
    }
    clock = FakeClock(datetime.now(UTC))
    async with running_roles(
        load_settings(**values), clock=clock, ping_interval=0.5, timeout=15
    ) as engine:
        yield Bot(slack, engine, tmp, clock)
