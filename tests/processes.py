"""The bot's roles as real processes (``python -m bennettbot``), for tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from pathlib import Path

from bennettbot.emulator.harness import service_environment

# What the dispatcher role needs to start (the Slack token goes unused
# unless a test points SLACK_API_URL at an emulator).
DISPATCHER_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-not-a-real-token",
    "SLACK_APP_USERNAME": "bennettbot",
    "SLACK_LOGS_CHANNEL": "#logs",
    "SLACK_TECH_SUPPORT_CHANNEL": "#tech-support",
    "WEBHOOK_ORIGIN": "http://127.0.0.1:9999",
    "EBMBOT_WEBHOOK_SECRET": "callback-secret-value",
}


async def start(tmp_path: Path, *args: str, env: dict[str, str]):
    """``python -m bennettbot ARGS`` run from ``tmp_path`` (no stray ``.env``)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bennettbot",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def emulator_env(tmp_path: Path, slack, port: int) -> dict[str, str]:
    """Every role's settings, pointed at the Slack emulator ``slack``."""
    return service_environment(
        tmp_path,
        **{**DISPATCHER_ENV, "SLACK_BOT_TOKEN": slack.bot_token},
        SLACK_APP_TOKEN=slack.app_token,
        SLACK_SIGNING_SECRET="signing-secret-value",
        SLACK_API_URL=slack.api_url,
        GITHUB_WEBHOOK_SECRET="github-secret-value",
        WEB_HOST="127.0.0.1",
        WEB_PORT=str(port),
    )


async def stop_processes(processes: Iterable[asyncio.subprocess.Process]) -> None:
    """SIGTERM each one still running, then wait for them all."""
    processes = list(processes)
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        await asyncio.wait_for(process.communicate(), 30)


async def kill_processes(processes: Iterable[asyncio.subprocess.Process]) -> None:
    """Whatever a failed test left running."""
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()
