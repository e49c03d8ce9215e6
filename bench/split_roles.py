"""``split_roles``: the Procfile's layout, the bot and the dispatcher as two
processes on one database, measured from outside.

The Slack emulator runs in this process; ``python -m bennettbot --role bot``
and ``--role dispatcher`` run as services against it (job config: one job,
``test_echo``, ``echo {word}`` with its stdout reported). Alice posts
``<@U0BOT> test echo hi`` 200 times, each once the previous one's result is
in its thread, then a 20 ms pause. For each: *accepted* is when the bot
process's ✅ reaction reaches the emulator (the job is queued by then), and
*started* is when the dispatcher process's "Command `test_echo` about to
start" reaches it. So accepted → started is the time the job waited to be
seen by another process, plus the dispatcher's start and one Slack call.

Then both processes sit idle for 30 s and the dispatcher's CPU time over
that span is read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from bennettbot.emulator import SlackEmulator
from bennettbot.emulator.harness import emulator_settings, service_environment

from .common import (
    Check,
    Line,
    at_most,
    distribution_ms,
    kill_tree,
    start_service,
)
from .slackrig import JOBS_TOML
from .web import cpu_seconds

SAMPLES, QUICK_SAMPLES = 200, 20
IDLE, QUICK_IDLE = 30.0, 5.0
WARM_UP = 3
PAUSE = 0.02
STARTED = "Command `test_echo` about to start"


def environment(root: Path, slack: SlackEmulator) -> dict[str, str]:
    config = root / "jobs.toml"
    config.write_text(JOBS_TOML)  # the Slack benchmarks' `echo` job
    settings = {k: str(v) for k, v in emulator_settings(slack, root).items()}
    return (
        service_environment(root, JOB_CONFIG_PATH=str(config))
        | settings
        | {
            "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "WEBHOOK_ORIGIN": "http://127.0.0.1:9",
            "EBMBOT_WEBHOOK_SECRET": "bench-callback-secret",
        }
    )


async def one_mention(slack: SlackEmulator) -> float:
    """Post one mention; seconds from accepted to started."""
    asked = await slack.post("alice", "general", "<@U0BOT> test echo hi")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="hi", timeout=30)
    [accepted] = [
        c.at
        for c in slack.calls_to("reactions.add")
        if c.params.get("timestamp") == asked.ts
    ]
    started = [
        c.at
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("text") == STARTED
    ]
    return started[-1] - accepted


async def run(root: Path, quick: bool) -> list[Line]:
    count = QUICK_SAMPLES if quick else SAMPLES
    idle = QUICK_IDLE if quick else IDLE
    async with SlackEmulator() as slack:
        env = environment(root, slack)
        with (root / "services.stderr").open("wb") as stderr:
            dispatcher = await start_service("dispatcher", root, env, stderr)
            bot = await start_service("bot", root, env, stderr)
        try:
            await slack.wait_for_connection(timeout=30)
            for _ in range(WARM_UP):
                await one_mention(slack)
            waits = []
            for _ in range(count):
                waits.append(await one_mention(slack))
                await asyncio.sleep(PAUSE)
            await asyncio.sleep(1)  # the last report's calls settle
            cpu_before, began = cpu_seconds(dispatcher.pid), time.monotonic()
            await asyncio.sleep(idle)
            cpu = cpu_seconds(dispatcher.pid) - cpu_before
            idle_share = cpu / (time.monotonic() - began)
            statuses = []
            for process in (bot, dispatcher):
                process.send_signal(signal.SIGTERM)
                statuses.append(await asyncio.wait_for(process.wait(), 30))
        finally:
            for process in (bot, dispatcher):
                if process.returncode is None:
                    kill_tree(process.pid)
                    await process.wait()
    stats = distribution_ms(waits)
    notes = [
        f"{count} mentions one at a time, after {WARM_UP} not counted; "
        "accepted = the bot's ✅ reaction recorded by the emulator, started = "
        "the dispatcher's 'about to start' recorded by it",
        f"idle dispatcher: {cpu:.2f} s of CPU in {idle:g} s; SIGTERM → exit {statuses}",
    ]
    if quick:
        notes.append(f"quick run: {count} mentions and {idle:g} s idle")
    return [
        Line(
            "split_roles",
            f"bot process accepted → dispatcher process started: median "
            f"{stats['median']:.1f} ms, p90 {stats['p90']:.1f} ms, p99 "
            f"{stats['p99']:.1f} ms, max {stats['max']:.1f} ms; idle dispatcher "
            f"CPU {idle_share:.2%} of a core",
            (
                at_most("median", stats["median"], 50, "ms"),
                at_most("p99", stats["p99"], 250, "ms"),
                at_most("idle CPU", idle_share * 100, 2, "% of a core"),
                Check("exit status 0 on SIGTERM", statuses == [0, 0]),
            ),
            tuple(notes),
        )
    ]
