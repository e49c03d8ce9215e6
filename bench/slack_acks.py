"""``slack_acks_steady`` and ``slack_acks_burst``: Socket Mode ack latency.

The bot and dispatcher roles (``run_roles``, as the service runs them) are
connected to the Slack emulator, which runs apart from them
(``bench.slackrig``: its own process by default). Alice mentions the bot
with ``help``; each mention is two envelopes, ``app_mention`` and its
``message`` twin, and gets a ``help`` reply, which the emulator delivers
back to the bot as Slack does (a third envelope, an "echo"). The emulator
records when it sent each envelope and when its ack came back
(``Ack.latency``). The figures are over the mentions' envelopes; the
echoes' are in a note, and they too must all be acked.

- steady: 200 mentions/s for 10 s, the i-th due at ``start + i / 200``,
  after a warm-up of 20 mentions (so caches and pooled connections are warm).
- burst: 500 mentions (1,000 envelopes) sent back to back with no warm-up:
  the burst arrives as soon as the check file exists.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .common import Check, Line, at_most, percentile
from .slackrig import AckFigures, SlackRig, cpu_seconds, running_bot

HELP = "<@U0BOT> help"
STEADY_RATE = 200.0
STEADY_SECONDS = 10.0
WARM_UP = 20
BURST = 500
SLACK_LIMIT_MS = 3000.0
BURST_MAX_MS = 1000.0  # "none near Slack's 3 s limit"


def common_notes(rig: SlackRig, result: dict, cpu: float, wall: float) -> list[str]:
    echoes = AckFigures.from_json(result["echoes"])
    notes = [
        f"the bot's {echoes.count} replies delivered back to it: "
        f"{echoes.acked} acked, {echoes.describe()}",
        f"CPU over the run, in % of one CPU ({os.cpu_count()} CPUs): the worker "
        f"{cpu / wall:.0%}"
        + (
            f", the emulator {result['emulator_cpu'] / wall:.0%}"
            if rig.host.kind == "process"
            else " (bot, dispatcher and emulator)"
        ),
        rig.arrangement,
    ]
    if not result["settled"]:
        notes.append("the bot had not answered every mention when waiting ended")
    return notes


def all_acked(result: dict) -> Check:
    unacked = sum(
        AckFigures.from_json(result[key]).unacked for key in ("mentions", "echoes")
    )
    return Check("all acked", unacked == 0)


async def run_steady(root: Path, quick: bool) -> list[Line]:
    rate = STEADY_RATE
    seconds = 1.0 if quick else STEADY_SECONDS
    count = round(rate * seconds)
    async with running_bot(root) as rig:
        cpu, wall = cpu_seconds(), time.perf_counter()
        result = await rig.host.run(
            "steady", text=HELP, rate=rate, count=count, warm_up=WARM_UP, warm_rate=50
        )
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    mentions = AckFigures.from_json(result["mentions"])
    late = result["late_ms"]
    notes = [
        f"{count} mentions in {result['elapsed']:.2f} s "
        f"({count / result['elapsed']:.0f}/s); posts began at most "
        f"{max(late):.1f} ms late (p99 {percentile(late, 99):.1f} ms)",
        *common_notes(rig, result, cpu, wall),
    ]
    if quick:
        notes.append(f"quick run: {seconds:g} s instead of {STEADY_SECONDS:g} s")
    return [
        Line(
            "slack_acks_steady",
            f"{mentions.count} envelopes ({count} mentions at {rate:g}/s), "
            f"{mentions.acked} acked: {mentions.describe()}",
            (all_acked(result), at_most("p99", mentions.stat(99), 20, "ms")),
            tuple(notes),
        )
    ]


async def run_burst(root: Path, quick: bool) -> list[Line]:
    count = 50 if quick else BURST
    async with running_bot(root) as rig:
        cpu, wall = cpu_seconds(), time.perf_counter()
        result = await rig.host.run("burst", text=HELP, count=count)
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    mentions = AckFigures.from_json(result["mentions"])
    notes = [
        f"the emulator sent the {mentions.count} envelopes in "
        f"{result['send_span_ms']:.1f} ms (first to last); acks that arrive "
        "meanwhile are read, and stamped, once it has sent them all",
        f"{mentions.at_least(BURST_MAX_MS)} acks took ≥ {BURST_MAX_MS:g} ms, "
        f"{mentions.at_least(SLACK_LIMIT_MS)} ≥ {SLACK_LIMIT_MS:g} ms (Slack's limit)",
        "no warm-up: the burst arrives as soon as the check file exists; the "
        "bot's Web API calls meanwhile: "
        + ", ".join(f"{n} {method}" for method, n in sorted(result["calls"].items())),
        *common_notes(rig, result, cpu, wall),
    ]
    if quick:
        notes.append(f"quick run: {count} mentions instead of {BURST}")
    return [
        Line(
            "slack_acks_burst",
            f"{count} mentions at once = {mentions.count} envelopes, "
            f"{mentions.acked} acked: {mentions.describe()}",
            (
                all_acked(result),
                at_most("p99", mentions.stat(99), 250, "ms"),
                at_most("max", mentions.max, BURST_MAX_MS, "ms"),
            ),
            tuple(notes),
        )
    ]
