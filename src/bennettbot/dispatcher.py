"""The dispatcher: starts due jobs, runs them, records and reports the runs.

It runs jobs only while it holds the dispatcher lease (see ``lease``); without
it, it is a standby that runs nothing and touches no run. It sleeps until the
earliest of: a wake-up from this process (``wake()``, called when something
is queued here or a run ends), a commit by another process (the database's
``data_version``, looked at every ``WATCH_INTERVAL`` s), the next due time, the
lease's next renewal or look, or ``poll_interval``. Each run is its own task;
different types run concurrently, while the store guarantees one running job
per type.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import datetime
from functools import partial

import structlog

from . import messages
from .jobrun import JobRun, RunKit
from .lease import Lease
from .models import QueuedJob
from .store import persist
from .timetable import Timetable

log = structlog.get_logger("dispatcher")

HEARTBEAT = 10.0  # seconds between heartbeats; healthchecks allow 3 missed
WATCH_INTERVAL = 0.04  # seconds between looks at other processes' commits


class Dispatcher:
    def __init__(
        self,
        kit: RunKit,
        *,
        poll_interval: float = 5.0,
        lease: Lease | None = None,
        heartbeat_name: str = "dispatcher",
    ) -> None:
        self.kit = kit
        self._store, self._clock = kit.store, kit.clock
        self._poll_interval = poll_interval
        self._lease = lease or Lease(kit.store, kit.clock)
        self._heartbeat_name = heartbeat_name
        self._active = False
        self._said_standby = False
        self._pass = asyncio.Lock()  # one pass at a time; stop() waits for it
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._runs: dict[int, JobRun] = {}
        self.timetable: Timetable | None = None  # schedules, if any
        self._idle = asyncio.Event()
        self._idle.set()

    def wake(self) -> None:
        """Look at the queue now (something was queued or a run ended)."""
        self._wakeup.set()

    @property
    def running(self) -> int:
        return len(self._tasks)

    @property
    def holder(self) -> str:
        """This dispatcher's name as the lease's holder (runs carry it)."""
        return self._lease.holder

    @property
    def active(self) -> bool:
        """This dispatcher holds the lease (else it is a standby)."""
        return self._active

    async def recover(self) -> list[QueuedJob]:
        """Record runs left running by earlier holders of the lease as
        interrupted; tell their threads."""
        jobs = await self._store.recover_interrupted(
            self._clock.now(), self._lease.holder
        )
        for job in jobs:
            log.warning("job_interrupted", job_id=job.id, job_type=job.type)
            notice = messages.interrupted(job.type)
            await self.kit.say(self.kit.notifier.report_failure(job, notice))
        return jobs

    async def run_once(self) -> datetime | None:
        """Keep the lease; if held, start every startable job. Return when to
        look again (None: no idea)."""
        async with self._pass:
            if self._stopping:
                return None
            await self._keep_lease()
            if not self._active:
                return None
            if self._runs:
                await self._pass_on_stops()
            scheduled = None
            if self.timetable is not None and self.timetable.plans:
                scheduled = await self.timetable.fire_due()
            now = self._clock.now()
            for job in await self._store.reserve_due(now, self._lease.holder):
                self._idle.clear()
                run = self._runs[job.id] = JobRun(self.kit, job, self._lease.holder)
                task = asyncio.create_task(run.execute(), name=f"job-{job.id}")
                self._tasks[job.id] = task
                task.add_done_callback(partial(self._forget_task, job.id))
            queued = await self._store.next_wakeup(now)
            return min(filter(None, (queued, scheduled)), default=None)

    async def _pass_on_stops(self) -> None:
        """Stop the runs that someone asked to stop, from any process."""
        for job_id, by in await self._store.stop_requests(self._lease.holder):
            if (run := self._runs.get(job_id)) is not None:
                run.stop(by)

    def _forget_task(self, job_id: int, _: asyncio.Task[None]) -> None:
        self._forget(job_id)

    def _forget(self, job_id: int) -> None:
        self._tasks.pop(job_id, None)
        self._runs.pop(job_id, None)
        if not self._tasks:
            self._idle.set()
        self.wake()

    async def run(self) -> None:
        """Dispatch until ``stop()``, as the lease's holder or its standby."""
        watcher = asyncio.create_task(self._watch_other_processes(), name="watch")
        last_beat: datetime | None = None
        try:
            while not self._stopping:
                now = self._clock.now()
                if last_beat is None or (now - last_beat).total_seconds() >= HEARTBEAT:
                    await self._beat(now)
                    last_beat = now
                self._wakeup.clear()
                next_at = None
                try:
                    next_at = await self.run_once()
                except sqlite3.Error:
                    # e.g. "database is locked" past the busy timeout
                    log.exception("dispatch_pass_failed")
                timeout = min(self._poll_interval, self._lease.next_look_in())
                if next_at is not None:
                    due_in = (next_at - self._clock.now()).total_seconds()
                    timeout = max(0.0, min(timeout, due_in))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wakeup.wait()
        finally:
            watcher.cancel()

    async def _keep_lease(self) -> None:
        was_active = self._active
        self._active = await self._lease.keep()
        if self._active and not was_active:
            log.info("dispatcher_active", holder=self._lease.holder)
            try:
                await self.recover()
            except sqlite3.Error:
                log.exception("recovery_failed")  # tried again on the next pass
                self._active = False
        elif was_active and not self._active and not self._stopping:
            log.warning("dispatcher_lease_lost", holder=self._lease.holder)
            self._let_go()
        elif not self._active and not self._said_standby:
            log.info("dispatcher_standby", holder=self._lease.holder)
        self._said_standby = not self._active

    async def _hold_while_finishing(self) -> None:
        """During shutdown: renew the lease if it is ours, and beat."""
        last_beat = self._clock.now()
        while True:
            if self._lease.active():
                await self._lease.keep()  # renews when due; never claims
            now = self._clock.now()
            if (now - last_beat).total_seconds() >= HEARTBEAT:
                await self._beat(now)
                last_beat = now
            await asyncio.sleep(min(1.0, max(0.05, self._lease.next_look_in())))

    def _let_go(self) -> None:
        """The lease lapsed while we held it: another dispatcher may take
        over, so our runs end now (recorded as interrupted) rather than run
        on beside its."""
        for task in self._tasks.values():
            task.cancel()

    async def _beat(self, now: datetime) -> None:
        """The heartbeat the healthcheck reads; a failure is logged, not fatal
        (the healthcheck then fails once the heartbeat is stale)."""
        try:
            await persist(
                lambda: self._store.beat(self._heartbeat_name, now),
                what="heartbeat",
                attempts=3,
            )
        except sqlite3.Error as exc:
            log.error("heartbeat_failed", error=str(exc))

    async def _watch_other_processes(self) -> None:
        """Wake up when another process commits (e.g. the bot queued a job)."""
        seen: int | None = None
        while True:
            version: int | None
            try:
                version = await self._store.data_version()
            except sqlite3.Error:
                version = seen
            if seen is not None and version != seen:
                self.wake()
            seen = version
            await asyncio.sleep(WATCH_INTERVAL)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no job is running."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def stop(self, grace: float = 5.0) -> None:
        """Start nothing more; give running jobs ``grace`` seconds, then kill
        them (they are recorded and reported as interrupted); then give up
        the lease, so that a standby takes over at once."""
        self._stopping = True
        self.wake()
        async with self._pass:  # a pass in progress may still start jobs
            tasks = list(self._tasks.values())
        if tasks:
            # The runs are ours until they end: keep the lease (and the
            # heartbeat) while they finish, or a standby would take over.
            keeper = asyncio.create_task(self._hold_while_finishing())
            try:
                _, pending = await asyncio.wait(tasks, timeout=grace)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending)
            finally:
                keeper.cancel()
        self._active = False
        try:
            await persist(self._lease.release, what="lease release", attempts=3)
        except sqlite3.Error as exc:  # it lapses on its own
            log.error("lease_release_failed", error=str(exc))
