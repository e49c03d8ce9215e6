"""The queue's rules, one by one, straight against the store (fake clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bennettbot.models import Outcome, Requester
from bennettbot.store import MIGRATIONS, Store, from_db, to_db
from conftest import ALICE

BOB = Requester(user="U2", channel="C2", thread_ts="1700000000.000200", is_im=True)


async def test_schema_is_versioned_and_reopening_does_not_migrate_again(tmp_path):
    first = await Store.open(tmp_path / "bot.db")
    assert await first.schema_version() == len(MIGRATIONS)
    await first.close()
    second = await Store.open(tmp_path / "bot.db")
    assert await second.schema_version() == len(MIGRATIONS)
    await second.close()


def test_times_round_trip_as_integers():
    moment = datetime(2026, 11, 27, 19, 30, 1, 123456, tzinfo=UTC)
    assert from_db(to_db(moment)) == moment
    assert to_db(moment + timedelta(microseconds=1)) == to_db(moment) + 1
    with pytest.raises(ValueError, match="naive"):
        to_db(datetime(2026, 1, 1))


async def test_scheduling_a_waiting_type_again_updates_that_job(store, clock):
    first = await store.schedule_job("op_deploy", {"a": "1"}, ALICE, clock.now())
    later = clock.now() + timedelta(seconds=60)
    second = await store.schedule_job("op_deploy", {"a": "2"}, BOB, later)
    assert not first.updated and second.updated
    assert second.job_id == first.job_id
    [job] = await store.list_jobs()
    assert job.args == {"a": "2"}
    assert job.requester == BOB
    assert job.start_after == later


async def test_a_running_type_gets_one_waiting_job_behind_it(store, clock):
    await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    [running] = await store.reserve_due(clock.now())
    result = await store.schedule_job("op_deploy", {}, BOB, clock.now())
    assert result.running_job_id == running.id
    again = await store.schedule_job("op_deploy", {"x": "y"}, BOB, clock.now())
    assert again.job_id == result.job_id and again.updated
    assert await store.reserve_due(clock.now()) == []  # blocked by the running one
    run_id = await store.start_run(running, "op_deploy/x")
    await store.finish_run(run_id, running.id, clock.now(), Outcome.SUCCEEDED, 0)
    [waiting] = await store.reserve_due(clock.now())
    assert waiting.id == result.job_id and waiting.args == {"x": "y"}


async def test_delayed_jobs_wait_for_their_time(store, clock):
    start = clock.now() + timedelta(seconds=30)
    await store.schedule_job("test_hello", {}, ALICE, start)
    assert await store.reserve_due(clock.now()) == []
    assert await store.next_wakeup(clock.now()) == start
    clock.advance(29.999)
    assert await store.reserve_due(clock.now()) == []
    clock.advance(0.001)
    [job] = await store.reserve_due(clock.now())
    assert job.type == "test_hello" and job.started_at == clock.now()


async def test_cancel_job_removes_only_the_waiting_job(store, clock):
    await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    [running] = await store.reserve_due(clock.now())
    waiting = await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    assert await store.cancel_job("op_deploy") == waiting.job_id
    assert await store.cancel_job("op_deploy") is None
    assert [j.id for j in await store.list_jobs()] == [running.id]


async def test_suppression_holds_back_starts_inside_its_window(store, clock):
    now = clock.now()
    await store.schedule_suppression(
        "op_deploy", now - timedelta(minutes=1), now + timedelta(minutes=10)
    )
    result = await store.schedule_job("op_deploy", {}, ALICE, now)
    assert result.suppressed_until == now + timedelta(minutes=10)
    await store.schedule_job("op_other", {}, ALICE, now)  # other types unaffected
    assert [j.type for j in await store.reserve_due(now)] == ["op_other"]
    assert await store.next_wakeup(now) == now + timedelta(minutes=10)
    clock.advance(600)
    assert [j.type for j in await store.reserve_due(clock.now())] == ["op_deploy"]


async def test_cancel_suppression_releases_the_type(store, clock):
    now = clock.now()
    await store.schedule_suppression("op_deploy", now, now + timedelta(hours=1))
    await store.schedule_suppression(
        "op_deploy", now + timedelta(hours=2), now + timedelta(hours=3)
    )
    await store.schedule_job("op_deploy", {}, ALICE, now)
    assert await store.reserve_due(now) == []
    assert await store.cancel_suppressions("op_deploy") == 2
    assert len(await store.reserve_due(now)) == 1


async def test_expired_suppressions_disappear(store, clock):
    now = clock.now()
    await store.schedule_suppression("a_b", now, now + timedelta(minutes=5))
    future = await store.schedule_suppression(
        "a_c", now + timedelta(hours=1), now + timedelta(hours=2)
    )
    clock.advance(300)
    assert [s.id for s in await store.list_suppressions(clock.now())] == [future]


async def test_suppression_must_end_after_it_starts(store, clock):
    with pytest.raises(ValueError, match="end after"):
        await store.schedule_suppression("a_b", clock.now(), clock.now())


async def test_remove_job_takes_only_a_waiting_job(store, clock):
    await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    [running] = await store.reserve_due(clock.now())
    waiting = await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    assert await store.remove_job(running.id) is None  # stopped, not removed
    removed = await store.remove_job(waiting.job_id)
    assert removed is not None and removed.id == waiting.job_id
    assert await store.remove_job(waiting.job_id) is None
    assert [job.id for job in await store.list_jobs()] == [running.id]


async def test_a_stop_request_reaches_only_the_running_jobs_holder(store, clock):
    await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    [running] = await store.reserve_due(clock.now(), "holder-a")
    waiting = await store.schedule_job("op_deploy", {}, ALICE, clock.now())
    assert await store.request_stop(waiting.job_id, "U0BOB") is None
    assert await store.request_stop(10**20, "U0BOB") is None
    assert await store.stop_requests("holder-a") == []
    asked = await store.request_stop(running.id, "U0BOB")
    assert asked is not None and asked.id == running.id
    assert await store.stop_requests("holder-a") == [(running.id, "U0BOB")]
    assert await store.stop_requests("holder-b") == []


async def test_runs_of_types_newest_first_through_the_index(store, clock):
    ids = {}
    for job_type in ("op_a", "op_b", "other_c", "op_a", "op_b"):
        await store.schedule_job(job_type, {}, ALICE, clock.now())
        [job] = await store.reserve_due(clock.now())
        run_id = await store.start_run(job, "")
        await store.finish_run(run_id, job.id, clock.now(), Outcome.SUCCEEDED)
        ids.setdefault(job_type, []).append(run_id)
    newest = await store.runs_of(["op_a", "op_b"], limit=3)
    assert [run.id for run in newest] == [
        ids["op_b"][1],
        ids["op_a"][1],
        ids["op_b"][0],
    ]
    assert await store.runs_of([]) == []
    assert await store.runs_of(["nothing_here"]) == []
    plan = await store._rows(
        "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE type = ? ORDER BY id DESC",
        ("op_a",),
    )
    assert "runs_by_type" in " ".join(str(row[-1]) for row in plan)


async def test_every_run_is_recorded(store, clock):
    await store.schedule_job("test_hello_name", {"name": "Bob"}, ALICE, clock.now())
    [job] = await store.reserve_due(clock.now())
    run_id = await store.start_run(job, "test_hello_name/20260105-090000")
    clock.advance(2)
    await store.finish_run(run_id, job.id, clock.now(), Outcome.FAILED, 3, "boom")
    [run] = await store.runs()
    assert run.type == "test_hello_name" and run.args == {"name": "Bob"}
    assert run.requester.user == "U1" and run.requester.channel == "C1"
    assert run.requester.thread_ts == ALICE.thread_ts
    assert run.ended_at - run.started_at == timedelta(seconds=2)
    assert (run.exit_status, run.outcome, run.message) == (3, Outcome.FAILED, "boom")
    assert run.log_dir == "test_hello_name/20260105-090000"
    assert await store.list_jobs() == []


async def test_the_queue_survives_a_restart(tmp_path, clock):
    first = await Store.open(tmp_path / "bot.db")
    await first.schedule_job("test_hello", {"k": "v"}, ALICE, clock.now())
    await first.close()
    second = await Store.open(tmp_path / "bot.db")
    [job] = await second.reserve_due(clock.now())
    assert job.args == {"k": "v"} and job.requester == ALICE
    await second.close()


async def test_runs_left_running_by_a_dead_process_are_interrupted(tmp_path, clock):
    dead = await Store.open(tmp_path / "bot.db")
    await dead.schedule_job("op_deploy", {}, ALICE, clock.now())
    [job] = await dead.reserve_due(clock.now(), "dead-holder")
    await dead.start_run(job, "op_deploy/x", "dead-holder")
    await dead.schedule_job("op_deploy", {}, BOB, clock.now())  # queued behind it
    await dead.close()  # the process dies here

    fresh = await Store.open(tmp_path / "bot.db")
    [recovered] = await fresh.recover_interrupted(clock.now(), "new-holder")
    assert recovered.id == job.id and recovered.requester == ALICE
    [run] = await fresh.runs()
    assert run.outcome is Outcome.INTERRUPTED and run.ended_at == clock.now()
    [unblocked] = await fresh.reserve_due(clock.now())
    assert unblocked.requester == BOB
    await fresh.close()


async def test_two_connections_see_each_others_writes(tmp_path, clock):
    bot = await Store.open(tmp_path / "bot.db")
    dispatcher = await Store.open(tmp_path / "bot.db")
    await bot.schedule_job("test_hello", {}, ALICE, clock.now())
    [job] = await dispatcher.reserve_due(clock.now())
    assert [j.started_at for j in await bot.list_jobs()] == [job.started_at]
    await bot.close()
    await dispatcher.close()


async def test_reservation_is_atomic_across_connections(tmp_path, clock):
    stores = [await Store.open(tmp_path / "bot.db") for _ in range(3)]
    for number in range(60):
        await stores[0].schedule_job(f"ns_job{number}", {}, ALICE, clock.now())
    batches = await asyncio.gather(*(s.reserve_due(clock.now()) for s in stores))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 60
    for s in stores:
        await s.close()


async def test_concurrent_schedules_of_one_type_leave_one_waiting_job(tmp_path, clock):
    stores = [await Store.open(tmp_path / "bot.db") for _ in range(3)]
    await asyncio.gather(
        *(
            s.schedule_job("op_deploy", {"n": str(n)}, ALICE, clock.now())
            for n in range(20)
            for s in stores
        )
    )
    assert len(await stores[1].list_jobs()) == 1
    for s in stores:
        await s.close()


async def test_a_cancelled_transaction_is_rolled_back_and_later_writes_persist(
    tmp_path, clock
):
    store = await Store.open(tmp_path / "bot.db")
    task = asyncio.create_task(store.list_suppressions(clock.now()))
    await asyncio.sleep(0)  # let it reach its first await (BEGIN queued)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.schedule_job("test_hello", {}, ALICE, clock.now())
    await store.close()
    reopened = await Store.open(tmp_path / "bot.db")
    assert [j.type for j in await reopened.list_jobs()] == ["test_hello"]
    await reopened.close()


async def test_next_wakeup_is_now_for_a_job_that_is_startable_already(store, clock):
    await store.schedule_job("test_hello", {}, ALICE, clock.now())
    # e.g. queued by another process after this pass reserved
    assert await store.next_wakeup(clock.now()) == clock.now()
    await store.reserve_due(clock.now())
    assert await store.next_wakeup(clock.now()) is None


async def test_out_of_office_is_stored_replaced_and_cleared(store):
    from datetime import date

    assert await store.out_of_office() is None
    await store.set_out_of_office(date(2026, 12, 1), date(2026, 12, 5))
    await store.set_out_of_office(date(2026, 12, 2), date(2026, 12, 9))
    assert await store.out_of_office() == (date(2026, 12, 2), date(2026, 12, 9))
    await store.clear_out_of_office()
    assert await store.out_of_office() is None


async def test_a_support_request_is_reposted_once(store, clock):
    assert await store.mark_reposted("C1", "1.1", clock.now())
    assert not await store.mark_reposted("C1", "1.1", clock.now())
    assert await store.mark_reposted("C1", "1.2", clock.now())


async def test_a_version_1_database_is_upgraded(tmp_path, clock):
    import sqlite3

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:  # as the first release left it
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        db.execute(
            "INSERT INTO jobs (type, start_after) VALUES ('test_hello', ?)",
            (to_db(clock.now()),),
        )
    store = await Store.open(path)
    assert await store.schema_version() == len(MIGRATIONS)
    assert [j.type for j in await store.list_jobs()] == ["test_hello"]
    assert await store.out_of_office() is None
    await store.close()


async def test_removing_an_id_too_big_for_sqlite_finds_nothing(store):
    assert await store.remove_job(10**20) is None
    assert await store.remove_job(0) is None


async def test_a_confirmation_is_decided_once_and_expires(store, clock):
    asked = await store.add_confirmation(
        "op_deploy", {"env": "prod"}, ALICE, 60, clock.now()
    )
    await store.set_confirmation_message(asked, "C1", "1.2")
    found = await store.find_confirmation(asked)
    assert found is not None and found.state == "pending" and found.ts == "1.2"
    assert await store.oldest_pending_confirmation() == clock.now()
    earlier = clock.now() - timedelta(minutes=10)
    decided = await store.decide_confirmation(
        asked, "confirmed", "U2", asked_after=earlier
    )
    assert decided is not None and decided.args == {"env": "prod"}
    assert decided.delay_seconds == 60 and decided.requester == ALICE
    again = await store.decide_confirmation(
        asked, "cancelled", "U3", asked_after=earlier
    )
    assert again is None
    assert (await store.find_confirmation(asked)).decided_by == "U2"

    late = await store.add_confirmation("op_deploy", {}, ALICE, 0, clock.now())
    later = clock.now() + timedelta(minutes=11)
    assert (
        await store.decide_confirmation(
            late, "confirmed", "U2", asked_after=clock.now()
        )
        is None
    )
    [expired] = await store.expire_confirmations(later - timedelta(minutes=10))
    assert (expired.id, expired.state) == (late, "expired")
    assert await store.oldest_pending_confirmation() is None
    assert await store.find_confirmation(10**20) is None
