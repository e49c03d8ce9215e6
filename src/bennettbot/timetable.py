"""Schedules: namespace commands queued at their cron times, as if typed.

Only the dispatcher that holds the lease calls ``Timetable.fire_due``, and a
schedule's mark in the store moves by compare-and-set, so each time fires
once however many dispatchers there are. A schedule remembers when it last
fired (its mark). After downtime that missed one or more of its times, it
fires once, marked late, not once per missed time. A schedule seen for the
first time (a new database, a new or changed schedule) has missed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from . import messages
from .jobconfig import JobConfig, Namespace, ScheduleDef
from .jobqueue import JobQueue, SchedulingError
from .models import Clock, Requester
from .notifier import Notifier
from .store import Store

log = structlog.get_logger("timetable")

LATE_AFTER = 60.0  # seconds past its time: a firing later than this says so


@dataclass(frozen=True, slots=True)
class Plan:
    namespace: Namespace
    schedule: ScheduleDef

    @property
    def command(self) -> str:
        """The command as typed: ``NAMESPACE COMMAND``."""
        return f"{self.namespace.name} {' '.join(self.schedule.command.split())}"

    @property
    def key(self) -> str:
        """Its identity in the store: a changed schedule is a new one."""
        schedule = self.schedule
        return f"{self.command}|{schedule.cron}|{schedule.timezone}"

    @property
    def channel(self) -> str:
        return self.schedule.channel or self.namespace.default_channel


class Timetable:
    def __init__(
        self,
        config: JobConfig,
        store: Store,
        queue: JobQueue,
        notifier: Notifier,
        clock: Clock,
        bot_name: str = "",
    ) -> None:
        self._config, self._store, self._queue = config, store, queue
        self._notifier, self._clock, self._bot_name = notifier, clock, bot_name
        self.plans = [Plan(ns, schedule) for ns, schedule in config.schedules()]
        self._due: dict[str, datetime] = {}  # each plan's next time, as last read

    async def fire_due(self) -> datetime | None:
        """Queue every schedule whose time has come; the next time of any.
        The store is read only for schedules whose next time has come (or
        that this process has not looked at yet): the dispatcher calls this
        on every pass."""
        soonest: datetime | None = None
        for plan in self.plans:
            now = self._clock.now()
            due = self._due.get(plan.key)
            if due is None or due <= now:
                due = self._due[plan.key] = await self._fire_if_due(plan, now)
            soonest = due if soonest is None else min(soonest, due)
        return soonest

    async def _fire_if_due(self, plan: Plan, now: datetime) -> datetime:
        """Fire ``plan`` if its time has come (once, by compare-and-set); its
        next time."""
        mark = await self._store.schedule_mark(plan.key)
        if mark is None:  # first seen: nothing was missed
            await self._store.move_schedule_mark(plan.key, None, now)
            mark = now
        due = plan.schedule.next_after(mark)
        if due > now:
            return due
        if await self._store.move_schedule_mark(plan.key, mark, now):
            late = (now - due).total_seconds() > LATE_AFTER
            await self._fire(plan, due, late)
        return plan.schedule.next_after(now)

    async def _fire(self, plan: Plan, due: datetime, late: bool) -> None:
        """Say so in the schedule's channel, then queue the command with that
        message as its thread."""
        log.info("schedule_fired", command=plan.command, due=due.isoformat(), late=late)
        match = self._config.match(plan.command)
        assert match is not None, "checked when the config was loaded"
        text = messages.scheduled(plan.command, due, plan.schedule.timezone, late)
        posted = await self._notifier.announce(plan.channel, text)
        where = Requester(
            channel=posted.channel if posted else plan.channel,
            thread_ts=posted.ts if posted else "",
        )
        try:
            answer = await self._queue.perform(match, where)
        except SchedulingError as exc:
            reply = str(exc)
        else:
            reply = messages.queue_answer(answer, self._bot_name)
        if reply:
            await self._notifier.post(where.channel, reply, where.thread_ts)
