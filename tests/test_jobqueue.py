"""Queueing on behalf of people: command actions, suppressions, status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bennettbot import messages
from bennettbot.jobqueue import JobQueue, SchedulingError
from bennettbot.models import FakeClock
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
def queue(store, clock, woken):
    return JobQueue(store, CONFIG, clock, lambda: woken.append(1))


async def perform(queue, text):
    match = CONFIG.match(text)
    assert match is not None, text
    return messages.queue_answer(await queue.perform(match, ALICE), "bennettbot")


async def status(queue) -> str:
    return messages.status(await queue.status())


async def remove(queue, job_id: int) -> str:
    return messages.job_removed(await queue.remove_job(job_id), "bennettbot")


async def stop(queue, job_id: int) -> str:
    return messages.stop_asked(await queue.stop_job(job_id, ALICE), "bennettbot")


async def test_schedule_applies_the_delay_and_wakes_the_dispatcher(
    queue, store, clock, woken
):
    assert await perform(queue, "op deploy prod") == ""
    [job] = await store.list_jobs()
    assert job.type == "op_deploy" and job.args == {"env": "prod"}
    assert (job.start_after - clock.now()).total_seconds() == 60
    assert woken


async def test_an_unknown_job_type_is_refused(queue):
    with pytest.raises(SchedulingError, match="no job `op_nope`"):
        await queue.schedule_job("op_nope", {}, ALICE)


async def test_a_running_type_gets_the_already_running_reply(queue, store, clock):
    await perform(queue, "op deploy prod")
    clock.advance(60)
    [running] = await store.reserve_due(clock.now())
    reply = await perform(queue, "op deploy prod")
    assert f"(id {running.id}) is already running" in reply
    assert "`@bennettbot status`" in reply
    waiting = [job for job in await store.list_jobs() if job.started_at is None]
    assert f"`@bennettbot remove job id {waiting[0].id}`" in reply
    assert f"`@bennettbot stop job id {running.id}`" in reply


async def test_cancel_job(queue, store):
    await perform(queue, "op deploy prod")
    assert await perform(queue, "op cancel deploy") == (
        "Cancelled the waiting `op_deploy` job."
    )
    assert await store.list_jobs() == []
    assert await perform(queue, "op cancel deploy") == (
        "No `op_deploy` job was waiting."
    )


async def test_suppression_today_in_utc_then_cancelled(queue, store, clock):
    reply = await perform(queue, "op deploy suppress from 10:00 to 11:30")
    assert reply == (
        "`op_deploy` jobs are suppressed from 2026-03-02 10:00:00 UTC to "
        "2026-03-02 11:30:00 UTC."
    )
    [s] = await store.list_suppressions(clock.now())
    assert (s.start_at.hour, s.end_at.hour, s.end_at.minute) == (10, 11, 30)
    clock.advance(3600)  # 10:00: a deploy (due 10:01) waits, and says so
    reply = await perform(queue, "op deploy prod")
    assert "suppressed until 2026-03-02 11:30:00 UTC; it will wait" in reply
    assert await perform(queue, "op deploy unsuppress") == (
        "Cancelled 1 suppression(s) of `op_deploy` jobs."
    )


async def test_a_job_due_inside_a_suppression_is_told_it_waits(queue, clock):
    await perform(queue, "op deploy suppress from 08:00 to 12:00")
    reply = await perform(queue, "op deploy prod")
    assert reply == (
        "`op_deploy` jobs are suppressed until 2026-03-02 12:00:00 UTC; it will wait."
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [("11:00", "10:00"), ("10:00", "10:00"), ("25:00", "26:00"), ("ten", "11:00")],
)
async def test_bad_suppression_times_are_refused(queue, start, end):
    with pytest.raises(SchedulingError, match="HH:MM"):
        await perform(queue, f"op deploy suppress from {start} to {end}")


async def test_a_window_that_is_over_is_refused(queue):
    with pytest.raises(SchedulingError, match="ended at 2026-03-02 08:30:00 UTC"):
        await perform(queue, "op deploy suppress from 08:00 to 08:30")


async def test_status_lists_jobs_and_suppressions_with_ids(queue, store, clock):
    assert await status(queue) == "Nothing is happening"
    await perform(queue, "op deploy prod")
    await perform(queue, "op deploy suppress from 10:00 to 11:00")
    clock.advance(60)
    [running] = await store.reserve_due(clock.now())
    await perform(queue, "op deploy staging")
    lines = (await status(queue)).splitlines()
    assert lines[0] == (
        f"[{running.id}] op_deploy (env=prod) running since 2026-03-02 09:01:00 UTC"
    )
    assert lines[1].endswith(
        "op_deploy (env=staging) waiting to start at 2026-03-02 09:02:00 UTC"
    )
    assert lines[2].startswith("[suppression 1] op_deploy suppressed (scheduled)")


async def test_remove_job(queue, store):
    result = await queue.schedule_job("op_deploy", {"env": "x"}, ALICE)
    assert await remove(queue, result.job_id) == (
        f"Removed job {result.job_id} (`op_deploy`) from the queue."
    )
    assert await remove(queue, result.job_id) == (
        f"There is no job with id {result.job_id}."
    )


async def test_a_running_job_is_stopped_not_removed(queue, store, clock, woken):
    result = await queue.schedule_job("op_deploy", {"env": "x"}, ALICE)
    [running] = await store.reserve_due(clock.now(), "holder")
    assert await remove(queue, running.id) == (
        f"Job {running.id} (`op_deploy`) is running, so it stays: "
        f"`@bennettbot stop job id {running.id}` stops it."
    )
    woken.clear()
    assert await stop(queue, running.id) == (
        f"Stopping job {running.id} (`op_deploy`); its thread will be told."
    )
    assert woken  # the dispatcher of this process looks at once
    assert await store.stop_requests("holder") == [(result.job_id, ALICE.user)]


async def test_stopping_a_waiting_or_unknown_job_says_what_to_do(queue):
    result = await queue.schedule_job("op_deploy", {"env": "x"}, ALICE)
    assert await stop(queue, result.job_id) == (
        f"Job {result.job_id} (`op_deploy`) has not started, so there is nothing "
        f"to stop: `@bennettbot remove job id {result.job_id}` takes it off the "
        "queue."
    )
    assert await stop(queue, 999) == (
        "There is no job with id 999. `@bennettbot status` lists the jobs with "
        "their ids."
    )
