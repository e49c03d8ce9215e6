"""``throughput``: trivial local jobs (``true``) of distinct types, end to end.

The config has one namespace with jobs ``j0``…``j999``. With a real
``Dispatcher.run()`` loop going, every job is queued through the
``JobQueue`` (which wakes the dispatcher), due now; the clock runs from the
first ``schedule_job`` call until every run has been recorded as finished
and reported. Jobs run concurrently as they are reserved.
"""

from __future__ import annotations

import time
from pathlib import Path

from bennettbot.models import Outcome

from .common import (
    NAMESPACE,
    REQUESTER,
    Line,
    at_least,
    job_config,
    running_dispatcher,
)


async def run(root: Path, quick: bool) -> list[Line]:
    count = 100 if quick else 1000
    config = job_config({f"j{i}": "true" for i in range(count)})
    async with running_dispatcher(root, config) as rig:
        began = time.perf_counter()
        for index in range(count):
            await rig.queue.schedule_job(f"{NAMESPACE}_j{index}", {}, REQUESTER)
        queued = time.perf_counter()
        await rig.notifier.wait_finished(count, timeout=120)
        done = time.perf_counter()
        runs = await rig.store.runs(limit=count + 1)
        failures = list(rig.notifier.failures)
    succeeded = sum(1 for r in runs if r.outcome is Outcome.SUCCEEDED)
    if failures or len(runs) != count or succeeded != count:
        first = failures[0] if failures else ""
        raise RuntimeError(
            f"expected {count} successful runs, recorded {len(runs)} "
            f"({succeeded} succeeded, {len(failures)} failures) {first}"
        )
    rate = count / (done - began)
    return [
        Line(
            "throughput",
            f"{rate:.0f} jobs/s ({count} jobs of distinct types in "
            f"{done - began:.2f} s; queueing alone took {queued - began:.2f} s)",
            (at_least("rate", rate, 300, "jobs/s"),),
            ("predecessor: 38 jobs/s",),
        )
    ]
