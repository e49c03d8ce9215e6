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
import os
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import structlog

from . import messages, reports
from .jobconfig import Job, JobConfig
from .jobenv import job_environment
from .lease import Lease
from .models import Clock, Outcome, QueuedJob, Runner, RunResult, RunSpec
from .notifier import Notifier
from .runners.quoting import BadArgument, render_command
from .store import Store, persist

log = structlog.get_logger("dispatcher")

FetchFabfile = Callable[[str, Path], Awaitable[str | None]]
CallbackUrl = Callable[[QueuedJob, float], str]  # the job, its timeout (s)
MAX_REPORT_BYTES = 1 << 20
HEARTBEAT = 10.0  # seconds between heartbeats; healthchecks allow 3 missed
WATCH_INTERVAL = 0.04  # seconds between looks at other processes' commits


@dataclass(frozen=True, slots=True)
class Folders:
    logs: Path
    host_logs: str
    workspace: Path
    fab_workspace: Path

    def namespace_dir(self, namespace: str) -> Path:
        """The namespace's shipped folder, or its writable one (made on demand)."""
        shipped = self.workspace / namespace
        if shipped.is_dir():
            return shipped
        folder = self.fab_workspace / namespace
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def new_log_dir(self, job_type: str, started: datetime) -> Path:
        """``LOGS/TYPE/YYYYMMDD-HHMMSS``, suffixed ``-2``… if already taken."""
        base = self.logs / job_type / started.strftime("%Y%m%d-%H%M%S")
        candidate, number = base, 1
        while True:
            try:
                candidate.mkdir(parents=True)
                return candidate
            except FileExistsError:
                number += 1
                candidate = base.with_name(f"{base.name}-{number}")


class Dispatcher:
    def __init__(
        self,
        store: Store,
        config: JobConfig,
        notifier: Notifier,
        clock: Clock,
        folders: Folders,
        *,
        local_runner: Runner,
        ssh_runner: Runner | None = None,
        fetch_fabfile: FetchFabfile | None = None,
        callback_url: CallbackUrl | None = None,
        bot_name: str = "",
        job_env: Mapping[str, str] | None = None,
        poll_interval: float = 5.0,
        lease: Lease | None = None,
        heartbeat_name: str = "dispatcher",
    ) -> None:
        self._store = store
        self._config = config
        self._notifier = notifier
        self._clock = clock
        self._folders = folders
        self._local = local_runner
        self._ssh = ssh_runner
        self._fetch = fetch_fabfile
        self._callback_url = callback_url
        self._bot_name = bot_name
        # what jobs may be given (see ``jobenv``); a namespace picks from it
        self._job_env = dict(os.environ if job_env is None else job_env)
        self._namespace_envs: dict[str, dict[str, str]] = {}
        self._poll_interval = poll_interval
        self._lease = lease or Lease(store, clock)
        self._heartbeat_name = heartbeat_name
        self._active = False
        self._said_standby = False
        self._pass = asyncio.Lock()  # one pass at a time; stop() waits for it
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._namespace_dirs: dict[str, Path] = {}  # made already
        self._idle = asyncio.Event()
        self._idle.set()

    def wake(self) -> None:
        """Look at the queue now (something was queued or a run ended)."""
        self._wakeup.set()

    @property
    def running(self) -> int:
        return len(self._tasks)

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
            await self._say(
                self._notifier.report_failure(job, messages.interrupted(job.type))
            )
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
            now = self._clock.now()
            for job in await self._store.reserve_due(now, self._lease.holder):
                self._idle.clear()
                task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
                self._tasks[job.id] = task
                task.add_done_callback(partial(self._forget_task, job.id))
            return await self._store.next_wakeup(now)

    def _forget_task(self, job_id: int, _: asyncio.Task[None]) -> None:
        self._forget(job_id)

    def _forget(self, job_id: int) -> None:
        self._tasks.pop(job_id, None)
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

    # -- one run -----------------------------------------------------------

    async def _execute(self, job: QueuedJob) -> None:
        bound = log.bind(job_id=job.id, job_type=job.type)
        started = job.started_at or self._clock.now()
        definition = self._config.job(job.type)
        try:
            log_dir = self._folders.new_log_dir(job.type, started)
            relative_log_dir = str(log_dir.relative_to(self._folders.logs))
            run_id = await self._store.start_run(
                job, relative_log_dir, self._lease.holder
            )
        except Exception as exc:
            await self._setup_failed(job, exc)
            return
        notice = asyncio.create_task(
            self._say(self._notifier.notify_logs(messages.starting(job.type)))
        )
        result = RunResult(Outcome.ERROR, message="it was not started")
        try:
            result = await self._run(job, definition, log_dir)
        except asyncio.CancelledError:
            result = RunResult(Outcome.INTERRUPTED, message="the bot stopped")
            raise
        except Exception as exc:  # a bug of ours: record it, carry on
            bound.exception("job_crashed")
            result = RunResult(Outcome.ERROR, message=f"internal error ({exc!r})")
        finally:
            ended = self._clock.now()
            recorded = await persist(  # until it is recorded: never "running"
                lambda: self._store.finish_run(
                    run_id,
                    job.id,
                    ended,
                    result.outcome,
                    result.exit_status,
                    result.message,
                    holder=self._lease.holder,
                ),
                what="run end",
            )
            bound.info(
                "job_run",
                outcome=result.outcome.value,
                exit_status=result.exit_status,
                seconds=round((ended - started).total_seconds(), 3),
                log_dir=relative_log_dir,
                message=result.message or None,
            )
            await notice
            if recorded:
                await self._say(self._report(job, definition, result, relative_log_dir))
            else:  # the next holder of the lease recorded it and told the thread
                bound.warning("run_recorded_elsewhere")

    async def _setup_failed(self, job: QueuedJob, exc: Exception) -> None:
        """The run could not even be recorded: unblock the type and say so."""
        log.exception("job_setup_failed", job_id=job.id, job_type=job.type)
        try:  # the database may be what failed: retry until the type is free
            await persist(lambda: self._store.remove_job(job.id), what="job release")
        except Exception:
            log.exception("job_release_failed", job_id=job.id)
        result = RunResult(Outcome.ERROR, message=f"it could not be set up ({exc})")
        await self._say(
            self._notifier.report_failure(
                job,
                messages.failed(
                    job.type, result, self._folders.host_logs, "", self._bot_name
                ),
            )
        )

    async def _run(
        self, job: QueuedJob, definition: Job | None, log_dir: Path
    ) -> RunResult:
        if definition is None:
            return RunResult(
                Outcome.ERROR, message=f"job type {job.type!r} is not configured"
            )
        namespace = definition.namespace
        try:
            command = render_command(definition.definition.run_args_template, job.args)
        except (BadArgument, KeyError) as exc:
            return RunResult(Outcome.ERROR, message=str(exc))
        env = {}
        if self._callback_url is not None:
            env["EBMBOT_CALLBACK_URL"] = self._callback_url(
                job, definition.definition.timeout_seconds
            )
        if namespace.remote is not None:
            if self._ssh is None:
                return RunResult(Outcome.ERROR, message="SSH is not configured")
            spec_cwd: Path | str = namespace.remote.cwd
            runner, remote = self._ssh, namespace.remote.to_remote()
        else:
            folder = self._namespace_dirs.get(namespace.name)
            if folder is None:
                folder = self._folders.namespace_dir(namespace.name)
                self._namespace_dirs[namespace.name] = folder
            spec_cwd = folder
            if namespace.fabfile and self._fetch is not None:
                problem = await self._fetch(namespace.fabfile, folder / "fabfile.py")
                if problem:
                    await self._say(
                        self._notifier.notify_logs(
                            messages.fabfile_failed(namespace.name, problem)
                        )
                    )
            if (local_env := self._namespace_envs.get(namespace.name)) is None:
                local_env = self._namespace_envs[namespace.name] = job_environment(
                    self._job_env, namespace.env, self._folders.workspace
                )
            env = local_env | env
            runner, remote = self._local, None
        spec = RunSpec(
            run_id=job.id,
            job_type=job.type,
            command=command,
            cwd=spec_cwd,
            log_dir=log_dir,
            timeout_seconds=definition.definition.timeout_seconds,
            env=env,
            remote=remote,
        )
        return await runner.run(spec)

    async def _report(
        self, job: QueuedJob, definition: Job | None, result: RunResult, log_dir: str
    ) -> None:
        if result.outcome is not Outcome.SUCCEEDED or definition is None:
            last_words = ""
            if result.outcome is Outcome.FAILED and log_dir:
                last_words = await asyncio.to_thread(
                    _explanation, self._folders.logs / log_dir / "stderr"
                )
            text = messages.failed(
                job.type,
                result,
                self._folders.host_logs,
                log_dir,
                self._bot_name,
                last_words=last_words,
            )
            await self._notifier.report_failure(job, text)
            return
        stdout = ""
        if definition.definition.report_stdout:
            stdout = await asyncio.to_thread(
                _read_head, self._folders.logs / log_dir / "stdout"
            )
        try:
            report = reports.success_report(job.type, definition.definition, stdout)
        except reports.BadReport as exc:
            await self._notifier.report_failure(
                job, messages.bad_blocks(job.type, str(exc))
            )
            return
        if report is not None:
            await self._notifier.report(job, report)

    async def _say(self, call: Awaitable[None]) -> None:
        """Await a notifier call; a notifier failure is logged, never fatal."""
        try:
            await call
        except Exception:
            log.exception("notifier_failed")


def _read_head(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return file.read(MAX_REPORT_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _explanation(path: Path, size: int = 4096) -> str:
    """The explanation a failed job gave: its last non-blank line on stderr
    when that starts with ``error:`` (only then: stderr may hold anything)."""
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - size))
            tail = file.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if last.startswith("error:") else ""
