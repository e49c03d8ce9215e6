"""``slack_mention``: a mention of an ``echo`` job, to "about to start" and to
its result, one mention at a time.

The bot and dispatcher roles run as in ``slack_acks`` (``bench.slackrig``),
with a job config of one job, ``test_echo`` (``echo {word}``, its stdout
reported). Alice posts ``<@U0BOT> test echo hi`` 100 times, each once the
previous one is over: its result posted, its ✅ reaction added and every
envelope acked, then a 20 ms pause. The clock starts when the emulator sends
the ``app_mention`` envelope and stops when the emulator records "Command
`test_echo` about to start" in #logs (``slack_mention_to_start``) and the
reply ``hi`` in the mention's thread (``slack_echo_result``). The way there
is in a note: the ack, and the reaction (the job is queued by then).
"""

from __future__ import annotations

from pathlib import Path

from .common import Line, at_most, distribution_ms
from .slackrig import running_bot

SAMPLES = 100
WARM_UP = 3
PAUSE = 0.02


def describe(ms: list[float]) -> str:
    stats = distribution_ms([m / 1000 for m in ms])
    return (
        f"median {stats['median']:.1f} ms, p90 {stats['p90']:.1f} ms, "
        f"p99 {stats['p99']:.1f} ms, max {stats['max']:.1f} ms"
    )


def median(ms: list[float]) -> float:
    return distribution_ms([m / 1000 for m in ms])["median"]


async def run(root: Path, quick: bool) -> list[Line]:
    count = 10 if quick else SAMPLES
    scenario = {
        "text": "<@U0BOT> test echo hi",
        "job_type": "test_echo",
        "expected": "hi\n",
        "pause": PAUSE,
    }
    async with running_bot(root) as rig:
        await rig.host.run("mentions", count=WARM_UP, **scenario)
        result = await rig.host.run("mentions", count=count, **scenario)
    started, finished = result["started"], result["result"]
    way = (
        f"on the way (medians): acked {median(result['ack']):.1f} ms, "
        f"✅ reaction (job queued) {median(result['queued']):.1f} ms, "
        f"about to start {median(started):.1f} ms, result {median(finished):.1f} ms"
    )
    notes = (
        way,
        f"{count} mentions one at a time, after {WARM_UP} not counted; "
        "from the app_mention envelope being sent to the message being recorded",
        rig.arrangement,
        *((f"quick run: {count} mentions instead of {SAMPLES}",) if quick else ()),
    )
    return [
        Line(
            "slack_mention_to_start",
            f"mention → 'about to start' in #logs: {describe(started)}",
            (at_most("median", median(started), 20, "ms"),),
            notes,
        ),
        Line(
            "slack_echo_result",
            f"mention → `echo` result in the thread: {describe(finished)}",
            (at_most("median", median(finished), 50, "ms"),),
        ),
    ]
