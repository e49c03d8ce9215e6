"""Frozen value types shared by the engine, and the injectable clock.

Every time handled here is a timezone-aware UTC ``datetime``; conversion to
and from the database's integer microseconds happens only in ``store``.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

# How a successful job's result goes to Slack (the job key ``report_format``).
ReportFormat = Literal["text", "blocks", "code", "file"]


class StartupError(Exception):
    """A role cannot start; the message is one line for the operator
    (``python -m bennettbot`` prints it and exits with status 2)."""


class Clock(Protocol):
    """Tells the current time (always timezone-aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; for tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


class Outcome(enum.StrEnum):
    """How a run ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # non-zero exit status
    TIMED_OUT = "timed_out"
    ERROR = "error"  # could not be started or connection failed (e.g. SSH)
    INTERRUPTED = "interrupted"  # the bot stopped or died while it ran
    STOPPED = "stopped"  # someone stopped it (`stop job id N`)
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Remote:
    """Where a namespace's jobs run over SSH."""

    host: str
    user: str
    port: int = 22
    cwd: str = "."


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked for a job, and where the result goes."""

    user: str = ""
    channel: str = ""
    thread_ts: str = ""
    is_im: bool = False


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job in the queue (waiting, or reserved and running)."""

    id: int
    type: str
    args: Mapping[str, str]
    requester: Requester
    start_after: datetime
    started_at: datetime | None = None

    @property
    def namespace(self) -> str:
        return self.type.partition("_")[0]


@dataclass(frozen=True, slots=True)
class Suppression:
    """Holds back every start of ``job_type`` while ``start_at <= now < end_at``."""

    id: int
    job_type: str
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """What scheduling a job did."""

    job_id: int
    updated: bool  # an existing waiting job of the type was updated
    running_job_id: int | None  # a job of this type is running right now
    start_after: datetime
    suppressed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of run history."""

    id: int
    job_id: int
    type: str
    args: Mapping[str, str]
    requester: Requester
    started_at: datetime
    ended_at: datetime | None
    exit_status: int | None
    log_dir: str
    outcome: Outcome
    message: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A question before queuing a ``confirm = true`` job, and its answer."""

    id: int
    job_type: str
    args: Mapping[str, str]
    requester: Requester  # who asked for the job, and where
    delay_seconds: float
    asked_at: datetime
    channel: str  # where the question is (its channel id and ts)
    ts: str
    state: str  # pending | confirmed | cancelled | expired
    decided_by: str  # a Slack user id


# -- what the job queue answers (``jobqueue``; ``messages`` says it) ----------


@dataclass(frozen=True, slots=True)
class JobQueued:
    job_type: str
    result: ScheduleResult


@dataclass(frozen=True, slots=True)
class JobCancelled:
    job_type: str
    found: bool  # a waiting job was there to cancel


@dataclass(frozen=True, slots=True)
class SuppressionsCancelled:
    job_type: str
    count: int


@dataclass(frozen=True, slots=True)
class JobRemoved:
    job_id: int
    job_type: str | None  # None: there was no such job
    running: bool = False  # it is running, so it was not removed


@dataclass(frozen=True, slots=True)
class StopAsked:
    job_id: int
    job_type: str | None  # None: there is no such job
    running: bool  # False: it is waiting, so there is nothing to stop


QueueAnswer = JobQueued | JobCancelled | Suppression | SuppressionsCancelled


@dataclass(frozen=True, slots=True)
class ScheduledNext:
    command: str  # as typed: NAMESPACE COMMAND
    next_at: datetime
    timezone: str


@dataclass(frozen=True, slots=True)
class QueueStatus:
    now: datetime
    jobs: list[QueuedJob]  # running ones, then waiting ones
    suppressions: list[Suppression]  # active and coming
    schedules: list[ScheduledNext] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a runner needs to run one job; built by the dispatcher."""

    run_id: int
    job_type: str
    command: str  # final shell command, arguments already quoted
    cwd: Path | str  # local folder, or the remote ``cwd``
    log_dir: Path
    timeout_seconds: float
    env: Mapping[str, str] = field(default_factory=dict)  # added to the environment
    remote: Remote | None = None
    stop: asyncio.Event | None = None  # set: stop the job (``stop job id N``)

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "stderr"


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended. ``message`` explains outcomes other than a clean exit."""

    outcome: Outcome
    exit_status: int | None = None
    message: str = ""


class Runner(Protocol):
    """Runs a command, streaming stdout/stderr into ``spec.log_dir``.

    Implementations create ``spec.log_dir`` if needed, write ``stdout`` and
    ``stderr`` there while the command runs, kill it after
    ``spec.timeout_seconds`` (outcome ``TIMED_OUT``), and kill it when the
    calling task is cancelled (then re-raise ``CancelledError``). They never
    raise for failures of the command or the connection: those come back as a
    ``RunResult`` with outcome ``FAILED``, ``TIMED_OUT`` or ``ERROR``.
    """

    async def run(self, spec: RunSpec) -> RunResult: ...

    async def close(self) -> None: ...
