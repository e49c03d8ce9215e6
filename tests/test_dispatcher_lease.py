"""One active dispatcher per database: real dispatcher processes sharing one
database and reporting to the Slack emulator, as during a dokku deploy."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiosqlite

from bennettbot.emulator.harness import service_environment
from bennettbot.lease import Lease
from bennettbot.models import FakeClock, Outcome, Requester, SystemClock
from bennettbot.store import Store
from conftest import wait_until
from processes import DISPATCHER_ENV

SLOW = (
    "echo $$ >> ran-slow; touch started-slow; "
    "until [ -e release-slow ]; do sleep 0.02; done"
)
JOBS = f"""
[lease]
[lease.jobs.slow]
run_args_template = "{SLOW}"
[lease.jobs.quick]
run_args_template = "echo $$ >> ran-quick"
"""


class Dispatchers:
    """Dispatcher processes on one database, their logs in files."""

    def __init__(self, tmp: Path, slack, lease_seconds: float) -> None:
        (tmp / "jobs.toml").write_text(JOBS)
        self.tmp, self.slack = tmp, slack
        self.workdir = tmp / "workspace-data" / "lease"
        self.env = service_environment(
            tmp,
            **{**DISPATCHER_ENV, "SLACK_BOT_TOKEN": slack.bot_token},
            SLACK_API_URL=slack.api_url,
            JOB_CONFIG_PATH=str(tmp / "jobs.toml"),
            DISPATCHER_LEASE_SECONDS=str(lease_seconds),
            SHUTDOWN_GRACE_SECONDS="20",
        )
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str) -> asyncio.subprocess.Process:
        with (self.tmp / f"{name}.log").open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bennettbot",
                "--role",
                "dispatcher",
                cwd=self.tmp,
                env=self.env,
                stdout=out,
                stderr=out,
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    async def said(self, name: str, event: str, timeout: float = 20) -> None:
        await wait_until(lambda: f'"event": "{event}"' in self.log(name), timeout)

    def ran(self, job: str) -> list[str]:
        path = self.workdir / f"ran-{job}"
        return path.read_text().split() if path.exists() else []

    def interrupted_notices(self) -> list[str]:
        texts = [
            c.params.get("text", "") for c in self.slack.calls_to("chat.postMessage")
        ]
        return [t for t in texts if "interrupted" in t]

    async def close(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        # a job orphaned by a SIGKILLed dispatcher waits for its release file
        (self.workdir / "release-slow").touch()


@asynccontextmanager
async def dispatchers(tmp, slack, lease_seconds=30.0) -> AsyncIterator[Dispatchers]:
    rig = Dispatchers(tmp, slack, lease_seconds)
    try:
        yield rig
    finally:
        await rig.close()


async def a_running_b_standing_by(rig: Dispatchers, store: Store):
    """A active with a `lease_slow` job running, then B started beside it (a
    deploy's new container) and waiting as a standby; A and the job's thread."""
    a = await rig.start("a")
    await rig.said("a", "dispatcher_active")
    slow_thread = await queue(store, "lease_slow", rig.slack)
    await wait_until((rig.workdir / "started-slow").exists, 15)
    await rig.start("b")
    await rig.said("b", "dispatcher_standby")
    return a, slow_thread


async def holders(db: Path) -> dict[str, str]:
    """Each run's type and the lease holder that ran it."""
    async with aiosqlite.connect(db) as connection:
        rows = await connection.execute_fetchall("SELECT id, holder FROM runs")
    return {str(run_id): holder for run_id, holder in rows}


async def queue(store: Store, job_type: str, slack) -> str:
    parent = await slack.post("alice", "general", f"please run {job_type}")
    await store.schedule_job(
        job_type,
        {},
        Requester(user="U0ALICE", channel="C0GENERAL", thread_ts=parent.ts),
        SystemClock().now(),
    )
    return parent.ts


async def test_a_second_dispatcher_waits_as_a_standby_then_takes_over_at_once(
    tmp_path, slack
):
    async with dispatchers(tmp_path, slack) as rig:
        store = await Store.open(tmp_path / "bot.db")
        try:
            a, slow_thread = await a_running_b_standing_by(rig, store)
            assert "dispatcher_active" not in rig.log("b")
            (rig.workdir / "release-slow").touch()
            await slack.wait_for_reply(
                "C0GENERAL", slow_thread, contains="succeeded", timeout=15
            )
            # A stops cleanly (a deploy's end): B takes over at once
            a.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(a.wait(), 30) == 0
            began = time.monotonic()
            quick_thread = await queue(store, "lease_quick", slack)
            await wait_until(lambda: len(rig.ran("quick")) == 1, 10)
            took = time.monotonic() - began
            await slack.wait_for_reply(
                "C0GENERAL", quick_thread, contains="succeeded", timeout=15
            )
            runs = await store.runs()
        finally:
            await store.close()
    assert took < 3, f"B took {took:.2f} s to run the next job"
    assert rig.interrupted_notices() == []
    assert {r.outcome for r in runs} == {Outcome.SUCCEEDED}
    assert len(rig.ran("slow")) == 1 and len(rig.ran("quick")) == 1
    by_holder = await holders(tmp_path / "bot.db")
    slow, quick = sorted(runs, key=lambda r: r.id)
    assert f":{a.pid}:" in by_holder[str(slow.id)]
    assert f":{rig.processes['b'].pid}:" in by_holder[str(quick.id)]


async def test_after_a_holder_dies_the_standby_takes_over_when_its_lease_lapses(
    tmp_path, slack
):
    async with dispatchers(tmp_path, slack, lease_seconds=2) as rig:
        store = await Store.open(tmp_path / "bot.db")
        try:
            a, slow_thread = await a_running_b_standing_by(rig, store)
            await queue(store, "lease_slow", slack)  # waits behind the running one
            a.kill()  # no clean shutdown, no release
            await a.wait()
            await rig.said("b", "dispatcher_active", timeout=15)
            notice = await slack.wait_for_reply(
                "C0GENERAL", slow_thread, contains="interrupted", timeout=15
            )
            # the waiting job of the type now runs, once, under B
            await wait_until(lambda: len(rig.ran("slow")) == 2, 15)
            runs = await store.runs()
        finally:
            await store.close()
    assert "Ask again" in notice.text
    first = min(runs, key=lambda r: r.id)
    assert first.outcome is Outcome.INTERRUPTED
    assert len(rig.interrupted_notices()) == 1


async def lease_until(db: Path) -> float:
    """When the dispatcher lease lapses (Unix seconds), 0 when nobody holds it."""
    async with aiosqlite.connect(db) as connection:
        rows = await connection.execute_fetchall("SELECT until FROM leases")
    return rows[0][0] / 1e6 if rows else 0.0


async def test_a_holder_keeps_its_lease_while_its_jobs_finish_after_sigterm(
    tmp_path, slack
):
    async with dispatchers(tmp_path, slack, lease_seconds=2) as rig:
        store = await Store.open(tmp_path / "bot.db")
        try:
            a, slow_thread = await a_running_b_standing_by(rig, store)
            a.send_signal(signal.SIGTERM)  # a deploy retires A mid-job
            stopped_at = time.time()
            # A keeps renewing its 2 s lease during its grace: wait until it
            # has been renewed past two lease lengths after the SIGTERM
            async with asyncio.timeout(15):
                while await lease_until(tmp_path / "bot.db") < stopped_at + 4:
                    await asyncio.sleep(0.05)
            assert "dispatcher_active" not in rig.log("b")
            (rig.workdir / "release-slow").touch()
            await slack.wait_for_reply(
                "C0GENERAL", slow_thread, contains="succeeded", timeout=15
            )
            assert await asyncio.wait_for(a.wait(), 30) == 0
            await rig.said("b", "dispatcher_active")  # at once, on the release
            runs = await store.runs()
        finally:
            await store.close()
    assert rig.interrupted_notices() == []
    assert [r.outcome for r in runs] == [Outcome.SUCCEEDED]
    assert len(rig.ran("slow")) == 1


# -- the lease's contract, on one database ----------------------------------


async def test_the_lease_contract(store):
    clock = FakeClock()
    a = Lease(store, clock, ttl=30, holder="a")
    b = Lease(store, clock, ttl=30, holder="b")
    assert await a.keep() and not await b.keep()
    clock.advance(29)
    assert not await b.keep()  # still A's
    assert await a.keep()  # renewed (due every 5 s)
    clock.advance(29)
    assert a.active() and not await b.keep()
    clock.advance(31)  # A stopped renewing: lapsed
    assert not a.active()
    assert await b.keep()
    assert not await a.keep()  # A finds it taken
    await a.release()  # not A's to release
    assert not await store.lease_free(clock.now())
    await b.release()
    assert await store.lease_free(clock.now()) and await a.keep()


async def test_a_holder_keeps_what_it_had_while_the_database_fails_then_lets_go(
    store,
):
    clock = FakeClock()
    lease = Lease(store, clock, ttl=30, holder="a")
    assert await lease.keep()

    async def failing(*_: object) -> bool:
        raise aiosqlite.OperationalError("database is locked")

    store.claim_lease = failing  # type: ignore[method-assign]
    clock.advance(10)
    assert await lease.keep()  # a failed renewal: still ours by our clock
    clock.advance(25)
    assert not await lease.keep()  # lapsed by our clock: start nothing more


async def test_only_other_holders_runs_are_recovered(store):
    now = SystemClock().now()
    for job_type, holder in [("t_mine", "me"), ("t_theirs", "dead")]:
        await store.schedule_job(job_type, {}, Requester(), now)
        [job] = await store.reserve_due(now, holder)
        await store.start_run(job, "x", holder)
    recovered = await store.recover_interrupted(now + timedelta(seconds=1), "me")
    assert [j.type for j in recovered] == ["t_theirs"]
    outcomes = {r.type: r.outcome for r in await store.runs()}
    assert outcomes == {"t_mine": Outcome.RUNNING, "t_theirs": Outcome.INTERRUPTED}


async def test_a_dispatcher_that_loses_its_lease_ends_its_runs_itself(store, tmp_path):
    from conftest import ALICE, job_config, make_rig

    clock = FakeClock()
    config = job_config('[t]\n[t.jobs.wait]\nrun_args_template = "sleep 30"\n')
    rig = make_rig(store, clock, tmp_path, config)
    await store.schedule_job("t_wait", {}, ALICE, clock.now())
    await rig.dispatcher.run_once()
    assert rig.dispatcher.running == 1

    async def failing(*_: object) -> bool:
        raise aiosqlite.OperationalError("database is locked")

    store.claim_lease = failing  # type: ignore[method-assign]
    clock.advance(31)  # no renewal for longer than the lease: it lapsed
    await rig.dispatcher.run_once()
    await rig.dispatcher.wait_idle(10)
    [run] = await store.runs()
    assert run.outcome is Outcome.INTERRUPTED
    [failure] = rig.notifier.of_kind("failure")
    assert "interrupted" in failure.text
    # the next holder finds nothing of ours to recover, and says nothing more
    assert await store.recover_interrupted(clock.now(), "next-holder") == []
