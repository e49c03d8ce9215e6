"""Queueing on behalf of people: command actions, suppressions, status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bennettbot.models import FakeClock
from bennettbot.scheduler import Scheduler, SchedulingError
from conftest import ALICE, job_config

CONFIG = job_config(
    """
[op]
default_channel = "#ops"
[op.jobs.deploy]
run_args_template = "deploy {env}"
[[op.slack]]
command = "deploy [env]"
action = "schedule_job"
job_type = "deploy"
delay_seconds = 60
[[op.slack]]
command = "cancel deploy"
action = "cancel_job"
job_type = "deploy"
[[op.slack]]
command = "deploy suppress from [start] to [end]"
action = "schedule_suppression"
job_type = "deploy"
[[op.slack]]
command = "deploy unsuppress"
action = "cancel_suppression"
job_type = "deploy"
"""
)


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def woken():
    return []


@pytest.fixture
def scheduler(store, clock, woken):
    return Scheduler(store, CONFIG, clock, lambda: woken.append(1), "bennettbot")


async def perform(scheduler, text):
    match = CONFIG.match(text)
    assert match is not None, text
    return await scheduler.perform(match, ALICE)


async def test_schedule_applies_the_delay_and_wakes_the_dispatcher(
    scheduler, store, clock, woken
):
    assert await perform(scheduler, "op deploy prod") == ""
    [job] = await store.list_jobs()
    assert job.type == "op_deploy" and job.args == {"env": "prod"}
    assert (job.start_after - clock.now()).total_seconds() == 60
    assert woken


async def test_an_unknown_job_type_is_refused(scheduler):
    with pytest.raises(SchedulingError, match="no job `op_nope`"):
        await scheduler.schedule_job("op_nope", {}, ALICE)


async def test_a_running_type_gets_the_already_running_reply(scheduler, store, clock):
    await perform(scheduler, "op deploy prod")
    clock.advance(60)
    [running] = await store.reserve_due(clock.now())
    reply = await perform(scheduler, "op deploy prod")
    assert f"(id {running.id}) is already running" in reply
    assert "`@bennettbot status`" in reply
    assert f"`@bennettbot remove job id {running.id}`" in reply


async def test_cancel_job(scheduler, store):
    await perform(scheduler, "op deploy prod")
    assert await perform(scheduler, "op cancel deploy") == (
        "Cancelled the waiting `op_deploy` job."
    )
    assert await store.list_jobs() == []
    assert await perform(scheduler, "op cancel deploy") == (
        "No `op_deploy` job was waiting."
    )


async def test_suppression_today_in_utc_then_cancelled(scheduler, store, clock):
    reply = await perform(scheduler, "op deploy suppress from 10:00 to 11:30")
    assert reply == (
        "`op_deploy` jobs are suppressed from 2026-03-02 10:00:00 UTC to "
        "2026-03-02 11:30:00 UTC."
    )
    [s] = await store.list_suppressions(clock.now())
    assert (s.start_at.hour, s.end_at.hour, s.end_at.minute) == (10, 11, 30)
    clock.advance(3600)  # 10:00: a deploy (due 10:01) waits, and says so
    reply = await perform(scheduler, "op deploy prod")
    assert "suppressed until 2026-03-02 11:30:00 UTC; it will wait" in reply
    assert await perform(scheduler, "op deploy unsuppress") == (
        "Cancelled 1 suppression(s) of `op_deploy` jobs."
    )


async def test_a_job_due_inside_a_suppression_is_told_it_waits(scheduler, clock):
    await perform(scheduler, "op deploy suppress from 08:00 to 12:00")
    reply = await perform(scheduler, "op deploy prod")
    assert reply == (
        "`op_deploy` jobs are suppressed until 2026-03-02 12:00:00 UTC; it will wait."
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [("11:00", "10:00"), ("10:00", "10:00"), ("25:00", "26:00"), ("ten", "11:00")],
)
async def test_bad_suppression_times_are_refused(scheduler, start, end):
    with pytest.raises(SchedulingError, match="HH:MM"):
        await perform(scheduler, f"op deploy suppress from {start} to {end}")


async def test_a_window_that_is_over_is_refused(scheduler):
    with pytest.raises(SchedulingError, match="ended at 2026-03-02 08:30:00 UTC"):
        await perform(scheduler, "op deploy suppress from 08:00 to 08:30")


async def test_status_lists_jobs_and_suppressions_with_ids(scheduler, store, clock):
    assert await scheduler.status() == "Nothing is happening"
    await perform(scheduler, "op deploy prod")
    await perform(scheduler, "op deploy suppress from 10:00 to 11:00")
    clock.advance(60)
    [running] = await store.reserve_due(clock.now())
    await perform(scheduler, "op deploy staging")
    lines = (await scheduler.status()).splitlines()
    assert lines[0] == (
        f"[{running.id}] op_deploy (env=prod) running since 2026-03-02 09:01:00 UTC"
    )
    assert lines[1].endswith(
        "op_deploy (env=staging) waiting to start at 2026-03-02 09:02:00 UTC"
    )
    assert lines[2].startswith("[suppression 1] op_deploy suppressed (scheduled)")


async def test_remove_job(scheduler, store):
    result = await scheduler.schedule_job("op_deploy", {"env": "x"}, ALICE)
    assert await scheduler.remove_job(result.job_id) == (
        f"Removed job {result.job_id} (`op_deploy`) from the queue."
    )
    assert await scheduler.remove_job(result.job_id) == (
        f"There is no job with id {result.job_id}."
    )
