"""``history``: ``@bennettbot history`` with 100,000 runs in the store, from
the mention to the reply in its thread.

The store is filled before the bot starts: 100,000 finished runs spread over
20 job types, one of them ``test_echo`` (so ``history test`` and ``history
test_echo`` must find its runs among the others'). Then Alice asks, one at a
time: ``history``, ``history test`` (a namespace) and ``history test_echo`` (a
type). The clock starts when the emulator sends the ``app_mention`` envelope
and stops when it records the bot's reply.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bennettbot.store import Store

from .common import Line, at_most, distribution_ms
from .slackrig import running_bot

RUNS, QUICK_RUNS = 100_000, 10_000
SAMPLES, QUICK_SAMPLES = 50, 5
WARM_UP = 3
TYPES = ["test_echo", *(f"other{n}_job" for n in range(19))]
START = 1_700_000_000 * 1_000_000  # microseconds since the epoch, as stored


async def fill(path: Path, count: int) -> None:
    """``count`` finished runs, written straight into a migrated database."""
    store = await Store.open(path)
    await store.close()
    rows = (
        (
            n,
            TYPES[n % len(TYPES)],
            json.dumps({}),
            "U0ALICE",
            "C0GENERAL",
            f"1700000000.{n:06d}",
            START + n * 60_000_000,
            START + n * 60_000_000 + 1_500_000,
            0,
            f"{TYPES[n % len(TYPES)]}/run-{n}",
            "succeeded",
            "",
        )
        for n in range(1, count + 1)
    )
    with sqlite3.connect(path) as db:
        db.executemany(
            """INSERT INTO runs (job_id, type, args, requester, channel, thread_ts,
                   started_at, ended_at, exit_status, log_dir, outcome, message)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )
    db.close()


def describe(ms: list[float]) -> str:
    stats = distribution_ms([m / 1000 for m in ms])
    return (
        f"median {stats['median']:.1f} ms, p99 {stats['p99']:.1f} ms, "
        f"max {stats['max']:.1f} ms"
    )


async def run(root: Path, quick: bool) -> list[Line]:
    runs, count = (QUICK_RUNS, QUICK_SAMPLES) if quick else (RUNS, SAMPLES)
    await fill(root / "bot.db", runs)
    figures: dict[str, list[float]] = {}
    async with running_bot(root) as rig:
        for asked in ("history", "history test", "history test_echo"):
            text = f"<@U0BOT> {asked}"
            await rig.host.run("replies", text=text, count=WARM_UP, pause=0.01)
            result = await rig.host.run("replies", text=text, count=count, pause=0.01)
            if "newest first" not in result["reply"]:
                raise RuntimeError(f"unexpected reply to {asked!r}: {result['reply']}")
            figures[asked] = result["latencies_ms"]
    worst = max(max(ms) for ms in figures.values())
    notes = [f"`{asked}`: {describe(ms)}" for asked, ms in figures.items()] + [
        f"{runs:,} runs over {len(TYPES)} job types; {count} of each question "
        f"one at a time, after {WARM_UP} not counted",
        rig.arrangement,
    ]
    if quick:
        notes.append(f"quick run: {runs:,} runs, {count} questions each")
    return [
        Line(
            "history",
            f"mention → reply, {runs:,} runs stored: worst {worst:.1f} ms "
            f"over {3 * count} questions",
            (at_most("max", worst, 100, "ms"),),
            tuple(notes),
        )
    ]


async def run_home(root: Path, quick: bool) -> list[Line]:
    """``app_home``: the Home tab opened with 100,000 runs in the store, from
    ``app_home_opened`` to ``views.publish``."""
    runs, count = (QUICK_RUNS, QUICK_SAMPLES) if quick else (RUNS, SAMPLES)
    await fill(root / "bot.db", runs)
    async with running_bot(root) as rig:
        await rig.host.run("home", count=WARM_UP, pause=0.01)
        result = await rig.host.run("home", count=count, pause=0.01)
    ms = result["latencies_ms"]
    notes = [
        f"{runs:,} runs over {len(TYPES)} job types; opened {count} times one at "
        f"a time, after {WARM_UP} not counted",
        rig.arrangement,
    ]
    if quick:
        notes.append(f"quick run: {runs:,} runs, {count} openings")
    return [
        Line(
            "app_home",
            f"app_home_opened → views.publish, {runs:,} runs stored: {describe(ms)}",
            (at_most("max", max(ms), 100, "ms"),),
            tuple(notes),
        )
    ]
