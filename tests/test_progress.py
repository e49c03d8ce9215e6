"""Live progress: the shared edit budget, and many progress messages at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bennettbot.models import Outcome, QueuedJob, Requester
from bennettbot.notifier import RecordingNotifier
from bennettbot.progress import EditBudget, Pace, RunProgress, last_lines


def at_most(times: list[float], count: int, window: float) -> bool:
    """No more than ``count`` of ``times`` in any ``window`` seconds."""
    times = sorted(times)
    return all(
        later - first >= window - 1e-3
        for first, later in zip(times, times[count:], strict=False)
    )


async def test_the_budget_spreads_turns_over_windows():
    budget = EditBudget(3, window=0.3, reserve=1)
    loop = asyncio.get_running_loop()
    turns: list[float] = []

    async def edit() -> None:
        await budget.take()
        turns.append(loop.time())

    await asyncio.gather(*(edit() for _ in range(6)))
    assert len(turns) == 6
    assert at_most(turns, 2, 0.3)  # periodic edits leave the reserve alone


async def test_final_edits_go_first_and_may_use_the_reserve():
    budget = EditBudget(3, window=0.3, reserve=1)
    order: list[str] = []

    async def take(name: str, final: bool) -> None:
        await budget.take(final=final)
        order.append(name)

    await take("p1", False)
    await take("p2", False)  # periodic turns are used up for this window
    waiting = asyncio.create_task(take("p3", False))
    await take("f1", True)  # the reserve: at once
    await asyncio.gather(waiting, take("f2", True))
    assert order[:3] == ["p1", "p2", "f1"]
    assert order.index("f2") < order.index("p3")  # served before periodic


async def test_a_cancelled_wait_gives_up_its_turn():
    budget = EditBudget(2, window=10, reserve=1)
    await budget.take()
    waiting = asyncio.create_task(budget.take())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(budget.take(final=True), 1)  # the reserve is still there


def test_a_reserve_must_leave_periodic_turns():
    with pytest.raises(ValueError, match="reserve"):
        EditBudget(5, reserve=5)


def test_last_lines_are_the_last_non_blank_ones_cut_to_fit(tmp_path):
    log = tmp_path / "stdout"
    log.write_text("".join(f"line {n}\n\n" for n in range(20)) + "x" * 500 + "\n")
    shown = last_lines(log).splitlines()
    assert shown[:4] == ["line 16", "line 17", "line 18", "line 19"]
    assert shown[4] == "x" * 300 + "…"
    assert last_lines(tmp_path / "missing") == ""


async def test_fifty_runs_share_the_budget_and_every_final_edit_arrives():
    """Many progress messages at once: each is edited less often, the budget
    holds over every window, and no final edit is dropped."""
    notifier = RecordingNotifier()
    budget = EditBudget(10, window=0.5, reserve=3)
    pace = Pace(after=0.02, every=0.05, budget=budget)
    runs = []
    for n in range(50):
        job = QueuedJob(
            id=n + 1,
            type=f"ops_j{n}",
            args={},
            requester=Requester(user="U1", channel="C1", thread_ts=f"1.{n}"),
            start_after=datetime.now(UTC),
        )
        progress = RunProgress(notifier, pace, job, None)
        progress.start()
        runs.append(progress)

    def kind(name: str):
        return lambda notices: [n for n in notices if n.kind == name]

    await notifier.wait_for(lambda ns: len(kind("progress")(ns)) == 50)
    await notifier.wait_for(lambda ns: len(kind("edit")(ns)) >= 14)
    await asyncio.gather(*(run.finish(Outcome.SUCCEEDED) for run in runs))

    finals = [n for n in kind("edit")(notifier.notices) if "succeeded" in n.text]
    assert len(finals) == 50
    assert len({n.thread_ts for n in finals}) == 50  # one per message
    assert len(budget.turns) == len(kind("edit")(notifier.notices))
    assert at_most(list(budget.turns), 10, 0.5)
