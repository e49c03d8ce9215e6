"""The bot wired to a Slack emulator: one harness for the demo, the tests and
the benchmarks.

``emulator_settings`` points the settings at an emulator and keeps all the
bot's files under one folder; ``running_roles`` starts roles on those
settings, waits until the bot is connected, and stops them on exit.
``free_port`` and ``service_environment`` serve tests and benchmarks that run
the bot as a separate process.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from ..app import Engine, open_engine, run_roles
from ..models import Clock
from ..settings import Settings

CONNECT_TIMEOUT = 30.0


class EmulatorAddress(Protocol):
    """Where an emulator answers, and the tokens it accepts."""

    @property
    def api_url(self) -> str: ...
    @property
    def bot_token(self) -> str: ...
    @property
    def app_token(self) -> str: ...


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def service_environment(root: Path, **extra: str) -> dict[str, str]:
    """The environment for ``python -m bennettbot`` run as a process under test:
    this process's, less every setting, with the bot's files under ``root``;
    ``extra`` adds settings."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    return env | {k: str(v) for k, v in storage(root).items()} | extra


def storage(root: Path) -> dict[str, Path]:
    """Database, logs, job workspace and check file, all under ``root``."""
    return {
        "DB_PATH": root / "bot.db",
        "LOGS_DIR": root / "logs",
        "FAB_WORKSPACE_DIR": root / "workspace-data",
        "BOT_CHECK_FILE": root / "check",
    }


def emulator_settings(slack: EmulatorAddress, root: Path) -> dict[str, object]:
    """Settings that connect the bot to ``slack``, with its files under ``root``."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_APP_USERNAME": "bennettbot",
        "SLACK_LOGS_CHANNEL": "#logs",
        "SLACK_TECH_SUPPORT_CHANNEL": "#tech-support",
        **storage(root),
    }


@asynccontextmanager
async def running_roles(
    settings: Settings,
    roles: Iterable[str] = ("bot", "dispatcher"),
    *,
    clock: Clock | None = None,
    ping_interval: float = 10,
    timeout: float = CONNECT_TIMEOUT,
) -> AsyncIterator[Engine]:
    """Run ``roles`` in this loop until the block ends. With the bot role, the
    block starts once the bot is connected (its check file exists); with the
    web role, once the web server accepts connections."""
    roles = set(roles)
    stop = asyncio.Event()
    check = settings.BOT_CHECK_FILE
    async with open_engine(settings, clock=clock) as engine:
        task = asyncio.create_task(
            run_roles(engine, roles, stop, ping_interval=ping_interval),
            name="roles",
        )
        try:
            if "bot" in roles:
                check.unlink(missing_ok=True)
                await _connected(task, check, timeout)
            if "web" in roles:
                await _serving(task, settings.WEB_HOST, settings.WEB_PORT, timeout)
            yield engine
        finally:
            stop.set()
            async with asyncio.timeout(timeout):
                await task


async def _connected(task: asyncio.Task[None], check: Path, timeout: float) -> None:
    """Wait for the bot's check file, or the roles' early end."""
    async with asyncio.timeout(timeout):
        while not check.exists():  # noqa: ASYNC240 (a stat, on a local disk)
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the roles stopped before the bot connected")
            await asyncio.sleep(0.005)


async def _serving(
    task: asyncio.Task[None], host: str, port: int, timeout: float
) -> None:
    """Wait until ``host:port`` accepts a connection, or the roles' early end."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    async with asyncio.timeout(timeout):
        while True:
            if task.done():
                task.result()
                raise RuntimeError("the roles stopped before the web server served")
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return
