"""Queueing on behalf of people: the actions of Slack commands and webhooks.

This is the only way in to the queue for the bot, the web server and the
demo. It resolves commands to job types, applies delays and suppression
windows, and wakes the in-process dispatcher, if there is one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta

from . import messages
from .jobconfig import CommandMatch, JobConfig
from .models import Clock, Requester, ScheduleResult, Suppression
from .store import Store

_HHMM = re.compile(r"([01]?\d|2[0-3]):?([0-5]\d)")  # 09:00, 9:00 or 0900


class SchedulingError(ValueError):
    """A request that cannot be queued; the message is for the requester."""


class Scheduler:
    def __init__(
        self,
        store: Store,
        config: JobConfig,
        clock: Clock,
        wake: Callable[[], None] = lambda: None,
        bot_name: str = "",
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._wake = wake
        self._bot_name = bot_name

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

    async def perform(self, match: CommandMatch, requester: Requester) -> str:
        """Carry out a configured command; the reply ("" when none is needed)."""
        command = match.command
        job_type = f"{match.namespace.name}_{command.job_type}"
        match command.action:
            case "schedule_job":
                result = await self.schedule_job(
                    job_type, match.args, requester, command.delay_seconds
                )
                if result.running_job_id is not None:
                    return messages.already_running(
                        job_type, result.running_job_id, self._bot_name
                    )
                if result.suppressed_until is not None:
                    return messages.suppressed(job_type, result.suppressed_until)
                return ""
            case "cancel_job":
                found = await self._store.cancel_job(job_type)
                return messages.job_cancelled(job_type, found is not None)
            case "schedule_suppression":
                start, end = (match.args[p] for p in command.params)
                suppression = await self.schedule_suppression(job_type, start, end)
                return messages.suppression_scheduled(
                    job_type, suppression.start_at, suppression.end_at
                )
            case "cancel_suppression":
                count = await self._store.cancel_suppressions(job_type)
                self._wake()
                return messages.suppressions_cancelled(job_type, count)
        raise AssertionError(f"unknown action {command.action!r}")

    async def remove_job(self, job_id: int) -> str:
        job = await self._store.remove_job(job_id)
        self._wake()
        return messages.job_removed(job_id, job.type if job else None)

    async def status(self, args_hidden_for: Collection[str] = ()) -> str:
        """Running and waiting jobs, then suppressions, one per line. Jobs of
        the namespaces in ``args_hidden_for`` (restricted ones, for a guest)
        are shown by type only."""
        now = self._clock.now()
        lines = []
        for job in await self._store.list_jobs():
            shown = {} if job.namespace in args_hidden_for else job.args
            args = " ".join(  # typed by people: shown literally
                f"{k}={messages.escape(v)}" for k, v in sorted(shown.items())
            )
            args = f" ({args})" if args else ""
            if job.started_at is not None:
                lines.append(
                    f"[{job.id}] {job.type}{args} running since "
                    f"{messages.when(job.started_at)}"
                )
            else:
                lines.append(
                    f"[{job.id}] {job.type}{args} waiting to start at "
                    f"{messages.when(job.start_after)}"
                )
        for s in await self._store.list_suppressions(now):
            state = "active" if s.start_at <= now else "scheduled"
            lines.append(
                f"[suppression {s.id}] {s.job_type} suppressed ({state}) from "
                f"{messages.when(s.start_at)} to {messages.when(s.end_at)}"
            )
        return "\n".join(lines) or messages.NOTHING_HAPPENING


def _today_at(day: date, hhmm: str) -> datetime | None:
    found = _HHMM.fullmatch(hhmm.strip())
    if found is None:
        return None
    return datetime.combine(day, time(int(found[1]), int(found[2]), tzinfo=UTC))
