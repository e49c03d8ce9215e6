"""One run of a queued job: prepare it, run it, record it, report it.

The dispatcher decides *when* a job runs (see ``dispatcher``); a ``JobRun``
does everything else for that one job. What every run needs (the store, the
job config, the runners, the folders…) is a ``RunKit``, built once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from . import messages, reports
from .jobconfig import Job, JobConfig
from .jobenv import job_environment
from .logview import end_of
from .models import Clock, Outcome, QueuedJob, Runner, RunResult, RunSpec
from .notifier import Notifier
from .progress import Pace, RunProgress
from .runners.quoting import BadArgument, render_command
from .store import Store, persist

log = structlog.get_logger("dispatcher")

FetchFabfile = Callable[[str, Path], Awaitable[str | None]]
CallbackUrl = Callable[[QueuedJob, float], str]  # the job, its timeout (s)
MAX_REPORT_BYTES = 1 << 20


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


@dataclass(kw_only=True)
class RunKit:
    """What every run needs; the namespace folders and environments are
    worked out once each and kept."""

    store: Store
    config: JobConfig
    notifier: Notifier
    clock: Clock
    folders: Folders
    local_runner: Runner
    ssh_runner: Runner | None = None
    fetch_fabfile: FetchFabfile | None = None
    callback_url: CallbackUrl | None = None
    bot_name: str = ""
    pace: Pace | None = field(default_factory=Pace)  # None: no live progress
    # what jobs may be given (see ``jobenv``); a namespace picks from it
    job_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _dirs: dict[str, Path] = field(default_factory=dict, init=False, repr=False)
    _envs: dict[str, dict[str, str]] = field(
        default_factory=dict, init=False, repr=False
    )

    def namespace_dir(self, namespace: str) -> Path:
        if (folder := self._dirs.get(namespace)) is None:
            folder = self._dirs[namespace] = self.folders.namespace_dir(namespace)
        return folder

    def namespace_env(self, namespace: str, wanted: Iterable[str]) -> dict[str, str]:
        if (env := self._envs.get(namespace)) is None:
            env = self._envs[namespace] = job_environment(
                self.job_env, wanted, self.folders.workspace
            )
        return env

    async def say(self, call: Awaitable[None]) -> None:
        """Await a notifier call; a notifier failure is logged, never fatal."""
        try:
            await call
        except Exception:
            log.exception("notifier_failed")


class JobRun:
    """One reserved job, from its log folder to its report. ``holder`` is the
    dispatcher lease's holder, recorded with the run."""

    def __init__(self, kit: RunKit, job: QueuedJob, holder: str) -> None:
        self.kit, self.job, self.holder = kit, job, holder
        self.definition: Job | None = kit.config.job(job.type)
        self.stopped_by = ""  # who asked to stop it (a Slack user id)
        self._stop = asyncio.Event()
        self._log = log.bind(job_id=job.id, job_type=job.type)

    def stop(self, by: str) -> None:
        """Stop the run (``stop job id N``); asking again changes nothing."""
        if not self._stop.is_set():
            self._log.info("job_stop_requested", by=by)
            self.stopped_by = by
            self._stop.set()

    async def execute(self) -> None:
        """Record the run, run it, record how it ended, report it. Cancelling
        it records and reports the run as interrupted."""
        kit, job = self.kit, self.job
        started = job.started_at or kit.clock.now()
        try:
            log_dir = kit.folders.new_log_dir(job.type, started)
            relative_log_dir = str(log_dir.relative_to(kit.folders.logs))
            run_id = await kit.store.start_run(job, relative_log_dir, self.holder)
        except Exception as exc:
            await self._setup_failed(exc)
            return
        notice = asyncio.create_task(
            kit.say(kit.notifier.notify_logs(messages.starting(job.type)))
        )
        progress = self._progress(log_dir)
        began = asyncio.get_running_loop().time()
        result = RunResult(Outcome.ERROR, message="it was not started")
        try:
            result = await self._run(log_dir)
        except asyncio.CancelledError:
            result = RunResult(Outcome.INTERRUPTED, message="the bot stopped")
            raise
        except Exception as exc:  # a bug of ours: record it, carry on
            self._log.exception("job_crashed")
            result = RunResult(Outcome.ERROR, message=f"internal error ({exc!r})")
        finally:
            ended = kit.clock.now()
            if result.outcome is Outcome.STOPPED:
                result = RunResult(
                    Outcome.STOPPED, message=f"stopped by {self.stopped_by}"
                )
            recorded = await persist(  # until it is recorded: never "running"
                lambda: kit.store.finish_run(
                    run_id,
                    job.id,
                    ended,
                    result.outcome,
                    result.exit_status,
                    result.message,
                    holder=self.holder,
                ),
                what="run end",
            )
            self._log.info(
                "job_run",
                outcome=result.outcome.value,
                exit_status=result.exit_status,
                seconds=round((ended - started).total_seconds(), 3),
                log_dir=relative_log_dir,
                message=result.message or None,
            )
            await notice
            if recorded:
                took = asyncio.get_running_loop().time() - began
                await kit.say(self._report(result, relative_log_dir, took))
            else:  # the next holder of the lease recorded it and told the thread
                self._log.warning("run_recorded_elsewhere")
            if progress is not None:
                await kit.say(progress.finish(result.outcome))

    def _progress(self, log_dir: Path) -> RunProgress | None:
        """The run's live progress, unless its job (or the kit) has none."""
        definition = self.definition.definition if self.definition else None
        if definition is None or not definition.progress or self.kit.pace is None:
            return None
        stdout = log_dir / "stdout" if definition.report_stdout else None
        progress = RunProgress(self.kit.notifier, self.kit.pace, self.job, stdout)
        progress.start()
        return progress

    async def _setup_failed(self, exc: Exception) -> None:
        """The run could not even be recorded: unblock the type and say so."""
        kit, job = self.kit, self.job
        self._log.exception("job_setup_failed")
        try:  # the database may be what failed: retry until the type is free
            await persist(lambda: kit.store.release_job(job.id), what="job release")
        except Exception:
            self._log.exception("job_release_failed")
        result = RunResult(Outcome.ERROR, message=f"it could not be set up ({exc})")
        text = messages.failed(
            job.type, result, kit.folders.host_logs, "", kit.bot_name
        )
        await kit.say(kit.notifier.report_failure(job, text))

    async def _run(self, log_dir: Path) -> RunResult:
        prepared = await self._prepare(log_dir)
        if isinstance(prepared, RunResult):
            return prepared
        runner, spec = prepared
        return await runner.run(spec)

    async def _prepare(self, log_dir: Path) -> tuple[Runner, RunSpec] | RunResult:
        """The runner and what it runs, or why the job cannot run."""
        kit, job = self.kit, self.job
        if self.definition is None:
            return RunResult(
                Outcome.ERROR, message=f"job type {job.type!r} is not configured"
            )
        namespace, definition = self.definition.namespace, self.definition.definition
        try:
            command = render_command(definition.run_args_template, job.args)
        except (BadArgument, KeyError) as exc:
            return RunResult(Outcome.ERROR, message=str(exc))
        env = {}
        if kit.callback_url is not None:
            env["EBMBOT_CALLBACK_URL"] = kit.callback_url(
                job, definition.timeout_seconds
            )
        if namespace.remote is not None:
            if kit.ssh_runner is None:
                return RunResult(Outcome.ERROR, message="SSH is not configured")
            runner, remote = kit.ssh_runner, namespace.remote.to_remote()
            cwd: Path | str = namespace.remote.cwd
        else:
            runner, remote = kit.local_runner, None
            cwd = kit.namespace_dir(namespace.name)
            if namespace.fabfile and kit.fetch_fabfile is not None:
                await self._fetch_fabfile(namespace.name, namespace.fabfile, cwd)
            env = kit.namespace_env(namespace.name, namespace.env) | env
        return runner, RunSpec(
            run_id=job.id,
            job_type=job.type,
            command=command,
            cwd=cwd,
            log_dir=log_dir,
            timeout_seconds=definition.timeout_seconds,
            env=env,
            remote=remote,
            stop=self._stop,
        )

    async def _fetch_fabfile(self, namespace: str, url: str, folder: Path) -> None:
        """A fetch that fails keeps the last copy, and says so in the logs."""
        assert self.kit.fetch_fabfile is not None
        problem = await self.kit.fetch_fabfile(url, folder / "fabfile.py")
        if problem:
            notice = messages.fabfile_failed(namespace, problem)
            await self.kit.say(self.kit.notifier.notify_logs(notice))

    async def _report(self, result: RunResult, log_dir: str, took: float) -> None:
        kit, job = self.kit, self.job
        if result.outcome is Outcome.STOPPED:  # not a failure: no tech-support
            text = messages.stopped(job.id, job.type, self.stopped_by, took)
            where = job.requester
            await kit.notifier.post(where.channel, text, where.thread_ts)
            return
        if result.outcome is not Outcome.SUCCEEDED or self.definition is None:
            last_words = ""
            if result.outcome is Outcome.FAILED and log_dir:
                last_words = await asyncio.to_thread(
                    _explanation, kit.folders.logs / log_dir / "stderr"
                )
            text = messages.failed(
                job.type,
                result,
                kit.folders.host_logs,
                log_dir,
                kit.bot_name,
                last_words=last_words,
            )
            await kit.notifier.report_failure(job, text)
            return
        definition = self.definition.definition
        stdout = ""
        if definition.report_stdout:
            stdout = await asyncio.to_thread(
                _read_head, kit.folders.logs / log_dir / "stdout"
            )
        try:
            report = reports.success_report(job.type, definition, stdout)
        except reports.BadReport as exc:
            await kit.notifier.report_failure(
                job, messages.bad_blocks(job.type, str(exc))
            )
            return
        if report is not None:
            await kit.notifier.report(job, report)


def _read_head(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return file.read(MAX_REPORT_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _explanation(path: Path, size: int = 4096) -> str:
    """The explanation a failed job gave: its last non-blank line on stderr
    when that starts with ``error:`` (only then: stderr may hold anything)."""
    lines = [line.strip() for line in end_of(path, size).splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if last.startswith("error:") else ""
