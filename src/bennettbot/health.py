"""Healthchecks for each role, and the release step (used by dokku).

- bot: ``BOT_CHECK_FILE`` exists (removed at start and by the release step,
  created once connected to Slack);
- dispatcher: the heartbeat of this host's dispatcher (active or standby) in
  the database is recent; each container has its own host name, so a new
  container is not passed on the old one's heartbeat;
- web: ``GET /check/`` on ``WEB_PORT`` answers 200 ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime

import aiohttp

from .settings import Settings
from .store import Store

HEARTBEAT_MAX_AGE = 30.0


def heartbeat_name(role: str) -> str:
    """The heartbeat of ``role`` on this host (container)."""
    return f"{role}@{socket.gethostname()}"


def check_bot(settings: Settings) -> str | None:
    """None when healthy, else what is wrong."""
    if settings.BOT_CHECK_FILE.exists():
        return None
    return f"bot: not connected yet ({settings.BOT_CHECK_FILE} does not exist)"


async def check_dispatcher(settings: Settings) -> str | None:
    if not settings.DB_PATH.exists():
        return f"dispatcher: no database at {settings.DB_PATH}"
    store = await Store.open(settings.DB_PATH)
    try:
        beat = await store.last_beat(heartbeat_name("dispatcher"))
    finally:
        await store.close()
    if beat is None:
        return "dispatcher: no heartbeat yet"
    age = (datetime.now(UTC) - beat).total_seconds()
    if age > HEARTBEAT_MAX_AGE:
        return f"dispatcher: last heartbeat {age:.0f} s ago"
    return None


async def check_web(settings: Settings) -> str | None:
    url = f"http://127.0.0.1:{settings.WEB_PORT}/check/"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(url) as response,
        ):
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"web: {url} did not answer ({type(exc).__name__})"
    if response.status != 200 or body != "ok":
        return f"web: {url} answered {response.status}"
    return None


async def check(settings: Settings, roles: list[str]) -> list[str]:
    problems = []
    if "bot" in roles and (problem := check_bot(settings)):
        problems.append(problem)
    if "dispatcher" in roles and (problem := await check_dispatcher(settings)):
        problems.append(problem)
    if "web" in roles and (problem := await check_web(settings)):
        problems.append(problem)
    return problems


def release(settings: Settings) -> None:
    """Before new processes start: the bot is not connected until it says so."""
    with contextlib.suppress(FileNotFoundError):
        settings.BOT_CHECK_FILE.unlink()


def run_check(settings: Settings, roles: list[str]) -> list[str]:
    return asyncio.run(check(settings, roles))
