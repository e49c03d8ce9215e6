"""``idle_all_roles``: the whole service idle, and how soon it is healthy.

Runs the real service, ``python -m bennettbot --role all``, as a process of
its own, connected to the Slack emulator, which serves from the benchmark's
process (nothing else runs there meanwhile). The service gets the
environment a deployment sets, everything under the temporary folder, and
the shipped job config. The clock runs from just before the process is
spawned until its check file exists (the bot's Socket Mode connection is up:
SPEC's "start → healthy"). After 1 s of idling, its RSS (and PSS) is
sampled ten times; the line gives the largest. Then it gets SIGTERM and must
exit with status 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from bennettbot.emulator import SlackEmulator
from bennettbot.emulator.harness import emulator_settings, service_environment

from .common import Check, Line, at_most, kill_tree, start_service
from .memory import describe, sample

START_TIMEOUT = 30.0
IDLE_SECONDS = 1.0


def service_env(root: Path, slack: SlackEmulator) -> dict[str, str]:
    """What a deployment sets for ``--role all``, pointed at the emulator."""
    settings = {k: str(v) for k, v in emulator_settings(slack, root).items()}
    return (
        service_environment(root)
        | settings
        | {
            "SLACK_SIGNING_SECRET": "x",
            "WEBHOOK_ORIGIN": "http://127.0.0.1:9",
            "EBMBOT_WEBHOOK_SECRET": "x",
            "GITHUB_WEBHOOK_SECRET": "x",
        }
    )


def logged_roles(stderr: bytes) -> str:
    """The roles of the service's ``starting`` log line, as it logged them."""
    for raw in stderr.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "starting":
            return ", ".join(entry.get("roles", [])) or "?"
    return "?"


async def run(root: Path, quick: bool) -> list[Line]:
    check_file = root / "check"
    stderr_path = root / "service.stderr"
    async with SlackEmulator() as slack:
        with stderr_path.open("wb") as stderr:
            began = time.perf_counter()
            process = await start_service("all", root, service_env(root, slack), stderr)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while not check_file.exists():
                    if process.returncode is not None:
                        raise RuntimeError(
                            f"the service exited with {process.returncode}: "
                            + stderr_path.read_text()[-2000:]
                        )
                    await asyncio.sleep(0.002)
            healthy = time.perf_counter() - began
            await asyncio.sleep(IDLE_SECONDS)
            idle = await sample(process.pid)
            connections = len(slack.connections)
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                returncode = await process.wait()
            stopped = time.perf_counter() - stopping
        finally:
            if process.returncode is None:
                kill_tree(process.pid)
                await process.wait()
    roles = logged_roles(stderr_path.read_bytes())
    notes = (
        f"roles started (its 'starting' log line): {roles}",
        f"{idle.processes} process(es); {connections} Socket Mode connection(s); "
        f"the shipped job config; sampled after {IDLE_SECONDS:g} s of idling",
        "the emulator runs in the benchmark's process; the service is a process "
        "of its own",
    )
    return [
        Line(
            "idle_all_roles",
            f"`--role all` idle: {describe(idle)}",
            (at_most("RSS", idle.rss_mib, 90, "MiB"),),
            notes,
        ),
        Line(
            "start_to_healthy",
            f"spawned → check file exists: {healthy:.2f} s; SIGTERM → exit "
            f"status {returncode} after {stopped:.2f} s",
            (
                at_most("start → healthy", healthy, 1, "s"),
                Check("exit status 0 on SIGTERM", returncode == 0),
            ),
        ),
    ]
