"""``dispatch_latency``: from a job's due time to its command having started.

A real ``Dispatcher.run()`` loop (system clock, ``LocalRunner``, store on a
file) is given one job at a time, due 20 to 50 ms after it is queued. Latency =
the wall-clock time at which the job's shell ran its first command minus the
job's due time (its ``start_after``).

The job stamps itself without starting any program: its first command is the
shell builtin ``echo N > FIFO``, and a bash reader blocked on that FIFO
records ``$EPOCHREALTIME`` when the line arrives (it wakes within
microseconds; it is its own process, so the benchmark's event loop cannot
delay the stamp). The job then runs ``date +%s.%N``, a second, later stamp
that includes starting ``/usr/bin/date``, shown as a cross-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

from .common import (
    NAMESPACE,
    REQUESTER,
    Line,
    at_most,
    distribution_ms,
    job_config,
    running_dispatcher,
)

JOB = "stamp"
RANDOM_SEED = 9
# Holds the FIFO open read-write, so it never sees EOF between writers.
READER = 'exec 3<>"$1"; while read -r -u 3 line; do echo "$line $EPOCHREALTIME"; done'


@contextlib.asynccontextmanager
async def stamper(fifo: Path) -> AsyncIterator[asyncio.StreamReader]:
    """A bash process that stamps each line written to ``fifo``; its output."""
    os.mkfifo(fifo)
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        READER,
        "stamper",
        str(fifo),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    try:
        assert process.stdout is not None
        yield process.stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def run(root: Path, quick: bool) -> list[Line]:
    samples = 20 if quick else 200
    fifo = root / "stamps.fifo"
    config = job_config(
        {JOB: f"echo {{n}} > {shlex.quote(str(fifo))}; date +%s.%N > {{out}}"}
    )
    stamps = root / "stamps"
    stamps.mkdir()
    rng = random.Random(RANDOM_SEED)
    latencies: list[float] = []
    date_latencies: list[float] = []
    async with stamper(fifo) as stamped, running_dispatcher(root, config) as rig:
        for index in range(samples):
            out = stamps / str(index)
            result = await rig.queue.schedule_job(
                f"{NAMESPACE}_{JOB}",
                {"n": str(index), "out": str(out)},
                REQUESTER,
                delay_seconds=rng.uniform(0.020, 0.050),
            )
            async with asyncio.timeout(10):
                number, when = (await stamped.readline()).split()
            if int(number) != index:
                raise RuntimeError(f"stamp {number!r} arrived for job {index}")
            await rig.notifier.wait_finished(index + 1, timeout=10)
            due = result.start_after.timestamp()
            latencies.append(float(when) - due)
            date_latencies.append(float(out.read_text()) - due)
        failures = list(rig.notifier.failures)
    if failures:
        raise RuntimeError(f"{len(failures)} stamp jobs failed: {failures[0]}")
    stats = distribution_ms(latencies)
    by_date = distribution_ms(date_latencies)
    figures = (
        f"median {stats['median']:.2f} ms, p90 {stats['p90']:.2f} ms, "
        f"p99 {stats['p99']:.2f} ms, max {stats['max']:.2f} ms "
        f"(n={samples}, min {min(latencies) * 1000:.2f} ms)"
    )
    return [
        Line(
            "dispatch_latency",
            figures,
            (
                at_most("median", stats["median"], 5, "ms"),
                at_most("p99", stats["p99"], 20, "ms"),
            ),
            (
                "stamped by the job's shell (builtin echo into a FIFO); stamped by "
                f"/usr/bin/date run next: median {by_date['median']:.2f} ms, "
                f"p99 {by_date['p99']:.2f} ms",
                "predecessor: median 520 ms",
            ),
        )
    ]
