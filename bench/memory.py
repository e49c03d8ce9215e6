"""``memory``: RSS of the dispatcher's process tree, idle and running 20 jobs.

Runs the real service, ``python -m bennettbot --role dispatcher``, in a
temporary folder with a job config of 20 jobs, each its own type and each
exactly ``sleep 5``. Once it has logged "starting" and opened its database,
its RSS (and PSS) is sampled idle. Then the 20 jobs are queued through a
second connection to its database, as another role would queue them; the
dispatcher sees them at its next poll. Once its tree (the Python process and
all its descendants, found through the ppid in /proc) holds 20 ``sleep``
processes, the tree is sampled while all 20 run. Finally the dispatcher gets
SIGTERM and must exit with status 0 after waiting for (or interrupting) its
jobs.

Each job is two processes: ``/bin/sh`` (dash, which does not exec the last
command of ``-c``) and ``sleep``. Summed RSS counts the pages they share
(libc, the binaries) once per process; PSS shares them out, so the tree's PSS
is the memory it really uses.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bennettbot.emulator.harness import service_environment
from bennettbot.models import Requester
from bennettbot.store import Store

from .common import (
    NAMESPACE,
    Check,
    Line,
    TreeMemory,
    at_most,
    kill_tree,
    start_service,
    tree_memory,
)

SAMPLES = 10
SAMPLE_GAP = 0.05
START_TIMEOUT = 30.0


def settings_env(root: Path, config_path: Path) -> dict[str, str]:
    """The environment the dispatcher role needs, everything under ``root``."""
    return service_environment(root, JOB_CONFIG_PATH=str(config_path)) | {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_APP_USERNAME": "bot",
        "SLACK_LOGS_CHANNEL": "logs",
        "SLACK_TECH_SUPPORT_CHANNEL": "ts",
        "WEBHOOK_ORIGIN": "http://127.0.0.1:9",
        "EBMBOT_WEBHOOK_SECRET": "s",
    }


def write_config(root: Path, jobs: int, seconds: float) -> Path:
    lines = [f"[{NAMESPACE}]"]
    for index in range(jobs):
        lines += [
            f"[{NAMESPACE}.jobs.j{index}]",
            f'run_args_template = "sleep {seconds:g}"',
        ]
    path = root / "jobs.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` (something another process does); seconds waited."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.005)
    return time.monotonic() - began


async def sample(pid: int) -> TreeMemory:
    """The largest of ``SAMPLES`` readings of the tree's memory."""
    readings = []
    for _ in range(SAMPLES):
        readings.append(tree_memory(pid))
        await asyncio.sleep(SAMPLE_GAP)
    return max(readings, key=lambda r: r.rss_mib)


def describe(memory: TreeMemory) -> str:
    pss = f", PSS {memory.pss_mib:.1f} MiB" if memory.pss_mib is not None else ""
    return f"RSS {memory.rss_mib:.1f} MiB{pss}"


async def run(root: Path, quick: bool) -> list[Line]:
    jobs, seconds = (4, 2.0) if quick else (20, 5.0)
    config_path = write_config(root, jobs, seconds)
    stderr_path = root / "dispatcher.stderr"
    db_path = root / "bot.db"
    began = time.monotonic()
    with stderr_path.open("wb") as stderr:
        process = await start_service(
            "dispatcher", root, settings_env(root, config_path), stderr
        )
    try:
        await wait_for(
            lambda: b'"starting"' in stderr_path.read_bytes() and db_path.exists(),
            START_TIMEOUT,
            "the dispatcher to start",
        )
        started_in = time.monotonic() - began
        await asyncio.sleep(0.5)  # let it settle into its loop
        idle = await sample(process.pid)

        store = await Store.open(db_path)
        try:
            now = datetime.now(UTC)
            for index in range(jobs):
                await store.schedule_job(f"{NAMESPACE}_j{index}", {}, Requester(), now)
            waited = await wait_for(
                lambda: tree_memory(process.pid).commands.count("sleep") >= jobs,
                START_TIMEOUT,
                f"{jobs} jobs to start",
            )
            busy = await sample(process.pid)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(seconds + 15):
                returncode = await process.wait()
            runs = await store.runs(limit=jobs + 1)
        finally:
            await store.close()
    finally:
        if process.returncode is None:
            kill_tree(process.pid)
            await process.wait()
    sleeping = busy.commands.count("sleep")
    if sleeping != jobs:
        raise RuntimeError(f"expected {jobs} sleep processes, sampled {sleeping}")
    children = busy.processes - 1
    outcomes = sorted({r.outcome.value for r in runs})
    quick_note = ("quick run: fewer, shorter jobs",) if quick else ()
    return [
        Line(
            "memory",
            f"{jobs} concurrent `sleep {seconds:g}` jobs: tree {describe(busy)} "
            f"= dispatcher {busy.root_rss_mib:.1f} MiB + {children} job processes "
            f"{busy.rss_mib - busy.root_rss_mib:.1f} MiB",
            (at_most("tree RSS", busy.rss_mib, 120, "MiB"),),
            (
                "each job is /bin/sh + sleep; summed RSS counts their shared "
                "pages once per process, PSS counts them once",
                f"jobs queued from another connection; all {jobs} running "
                f"{waited:.2f} s later (the dispatcher polls the database every 1 s)",
                "predecessor: 820 MB RSS",
                *quick_note,
            ),
        ),
        Line(
            "memory_idle",
            f"idle dispatcher: {describe(idle)}; 'starting' logged after "
            f"{started_in:.2f} s; SIGTERM → exit status {returncode}, "
            f"{len(runs)} runs recorded ({', '.join(outcomes)})",
            (
                at_most("RSS", idle.rss_mib, 60, "MiB"),
                Check("exit status 0 on SIGTERM", returncode == 0),
            ),
        ),
    ]
