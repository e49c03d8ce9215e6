"""The job queue, as people change it: the actions of Slack commands and
webhooks.

This is the only way in to the queue for the bot, the web server and the
demo. It resolves commands to job types, applies delays and suppression
windows, and wakes the in-process dispatcher, if there is one. It answers
with typed results (``models``); ``messages`` says them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta

from . import messages
from .jobconfig import CommandMatch, JobConfig
from .models import (
    Clock,
    JobCancelled,
    JobQueued,
    JobRemoved,
    QueueAnswer,
    QueueStatus,
    Requester,
    ScheduledNext,
    ScheduleResult,
    StopAsked,
    Suppression,
    SuppressionsCancelled,
)
from .store import Store

_HHMM = re.compile(r"([01]?\d|2[0-3]):?([0-5]\d)")  # 09:00, 9:00 or 0900


class SchedulingError(ValueError):
    """A request that cannot be queued; the message is for the requester."""


class JobQueue:
    def __init__(
        self,
        store: Store,
        config: JobConfig,
        clock: Clock,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._wake = wake

    async def schedule_job(
        self,
        job_type: str,
        args: Mapping[str, str],
        requester: Requester,
        delay_seconds: float = 0,
    ) -> ScheduleResult:
        if self._config.job(job_type) is None:
            raise SchedulingError(f"There is no job `{job_type}`.")
        start = self._clock.now() + timedelta(seconds=delay_seconds)
        result = await self._store.schedule_job(job_type, args, requester, start)
        self._wake()
        return result

    async def schedule_suppression(
        self, job_type: str, start: str, end: str
    ) -> Suppression:
        """Suppress ``job_type`` today between ``start`` and ``end`` (HH:MM UTC)."""
        now = self._clock.now()
        start_at, end_at = _today_at(now.date(), start), _today_at(now.date(), end)
        if start_at is None or end_at is None or end_at <= start_at:
            raise SchedulingError(messages.BAD_TIMES)
        if end_at <= now:
            raise SchedulingError(messages.window_over(end_at))
        suppression_id = await self._store.schedule_suppression(
            job_type, start_at, end_at
        )
        self._wake()
        return Suppression(suppression_id, job_type, start_at, end_at)

    async def perform(self, match: CommandMatch, requester: Requester) -> QueueAnswer:
        """Carry out a configured command."""
        command = match.command
        job_type = f"{match.namespace.name}_{command.job_type}"
        match command.action:
            case "schedule_job":
                result = await self.schedule_job(
                    job_type, match.args, requester, command.delay_seconds
                )
                return JobQueued(job_type, result)
            case "cancel_job":
                found = await self._store.cancel_job(job_type)
                return JobCancelled(job_type, found is not None)
            case "schedule_suppression":
                start, end = (match.args[p] for p in command.params)
                return await self.schedule_suppression(job_type, start, end)
            case "cancel_suppression":
                count = await self._store.cancel_suppressions(job_type)
                self._wake()
                return SuppressionsCancelled(job_type, count)
        raise AssertionError(f"unknown action {command.action!r}")

    async def remove_job(self, job_id: int) -> JobRemoved:
        """Take waiting job ``job_id`` off the queue (a running one is
        stopped instead: ``stop_job``)."""
        job = await self._store.remove_job(job_id)
        if job is not None:
            self._wake()
            return JobRemoved(job_id, job.type)
        running = await self._store.find_job(job_id)
        return JobRemoved(job_id, running.type if running else None, bool(running))

    async def stop_job(self, job_id: int, requester: Requester) -> StopAsked:
        """Ask whichever dispatcher runs job ``job_id`` to stop it."""
        job = await self._store.request_stop(job_id, requester.user)
        if job is not None:
            self._wake()  # the dispatcher of this process, if it runs it
            return StopAsked(job_id, job.type, running=True)
        waiting = await self._store.find_job(job_id)
        return StopAsked(job_id, waiting.type if waiting else None, running=False)

    async def status(self) -> QueueStatus:
        """Running and waiting jobs, the schedules' next times, and the active
        and coming suppressions."""
        now = self._clock.now()
        jobs = await self._store.list_jobs()
        schedules = [
            ScheduledNext(
                f"{namespace.name} {' '.join(schedule.command.split())}",
                schedule.next_after(now),
                schedule.timezone,
            )
            for namespace, schedule in self._config.schedules()
        ]
        suppressions = await self._store.list_suppressions(now)
        return QueueStatus(now, jobs, suppressions, schedules)


def _today_at(day: date, hhmm: str) -> datetime | None:
    found = _HHMM.fullmatch(hhmm.strip())
    if found is None:
        return None
    return datetime.combine(day, time(int(found[1]), int(found[2]), tzinfo=UTC))
