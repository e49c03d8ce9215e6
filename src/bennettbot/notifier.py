"""How the dispatcher tells people about jobs: the ``Notifier`` protocol.

The dispatcher decides *what* to say (see ``reports``); a notifier only
delivers it. The Slack implementation lives with the Slack bot;
``RecordingNotifier`` is the in-memory twin for tests, and ``LogNotifier``
writes everything to the log for processes that have no Slack connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from .models import QueuedJob, ReportFormat


@dataclass(frozen=True, slots=True)
class Report:
    """A successful job's result: ``content`` in ``format``."""

    format: ReportFormat
    content: str
    filename: str = ""


@dataclass(frozen=True, slots=True)
class Posted:
    """A message that can be edited: its channel's id and its ts."""

    channel: str
    ts: str


class Notifier(Protocol):
    async def post(self, channel: str, text: str, thread_ts: str = "") -> bool:
        """Post ``text`` in ``channel``, in a thread if given; True once Slack
        accepted it."""

    async def notify_logs(self, text: str) -> None:
        """Post ``text`` to the logs channel (start notices, fetch problems)."""

    async def report(self, job: QueuedJob, report: Report) -> None:
        """Post a result in the thread of the message that asked for ``job``."""

    async def report_failure(self, job: QueuedJob, text: str) -> None:
        """Post a failure in the job's thread, and call tech-support unless the
        job was asked for in a direct message."""

    async def start_progress(self, job: QueuedJob, text: str) -> Posted | None:
        """Post ``text`` in the job's thread, to be edited; None when it could
        not be posted (or this notifier cannot edit)."""

    async def announce(self, channel: str, text: str) -> Posted | None:
        """Post ``text`` as a new message in ``channel`` (a name or an id);
        where it went (for a thread under it), or None."""

    async def edit(self, posted: Posted, text: str) -> bool:
        """Replace the text of ``posted``; True once Slack accepted it."""


@dataclass(frozen=True, slots=True)
class Notice:
    kind: Literal["post", "logs", "report", "failure", "progress", "edit"]
    text: str
    job: QueuedJob | None = None
    format: str = "text"
    channel: str = ""  # for posts: where, and in which thread
    thread_ts: str = ""


class RecordingNotifier:
    """Keeps every notice; ``wait_for`` waits (with a timeout) for one."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self._changed = asyncio.Condition()

    async def _add(self, notice: Notice) -> None:
        async with self._changed:
            self.notices.append(notice)
            self._changed.notify_all()

    async def post(self, channel: str, text: str, thread_ts: str = "") -> bool:
        await self._add(Notice("post", text, channel=channel, thread_ts=thread_ts))
        return True

    async def notify_logs(self, text: str) -> None:
        await self._add(Notice("logs", text))

    async def report(self, job: QueuedJob, report: Report) -> None:
        await self._add(Notice("report", report.content, job, report.format))

    async def report_failure(self, job: QueuedJob, text: str) -> None:
        await self._add(Notice("failure", text, job))

    async def start_progress(self, job: QueuedJob, text: str) -> Posted | None:
        await self._add(Notice("progress", text, job))
        return Posted(job.requester.channel, str(len(self.notices)))

    async def edit(self, posted: Posted, text: str) -> bool:
        await self._add(
            Notice("edit", text, channel=posted.channel, thread_ts=posted.ts)
        )
        return True

    async def announce(self, channel: str, text: str) -> Posted | None:
        await self._add(Notice("post", text, channel=channel))
        return Posted(channel, f"announce.{len(self.notices)}")

    async def wait_for(
        self, predicate: Callable[[list[Notice]], bool], timeout: float = 10
    ) -> list[Notice]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.notices))
        return self.notices

    def of_kind(self, kind: str) -> list[Notice]:
        return [n for n in self.notices if n.kind == kind]


class LogNotifier:
    """Writes notices to the structured log."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("notifier")

    async def post(self, channel: str, text: str, thread_ts: str = "") -> bool:
        self._log.info("post", channel=channel, thread_ts=thread_ts, text=text)
        return True

    async def notify_logs(self, text: str) -> None:
        self._log.info("logs_notice", text=text)

    async def report(self, job: QueuedJob, report: Report) -> None:
        self._log.info(
            "job_report",
            job_id=job.id,
            job_type=job.type,
            format=report.format,
            text=report.content,
        )

    async def report_failure(self, job: QueuedJob, text: str) -> None:
        self._log.warning("job_failure", job_id=job.id, job_type=job.type, text=text)

    async def start_progress(self, job: QueuedJob, text: str) -> Posted | None:
        return None  # nothing to edit: the log has the run's start and end

    async def edit(self, posted: Posted, text: str) -> bool:
        return False

    async def announce(self, channel: str, text: str) -> Posted | None:
        self._log.info("announcement", channel=channel, text=text)
        return None
