"""Live progress: one message in a long run's thread, edited while it runs.

A run that lasts longer than ``Pace.after`` seconds gets a message saying how
long it has been running (with the last lines of its stdout when that is
reported); the message is edited at most every ``Pace.every`` seconds, and a
last time to say how the run ended. Every edit, of every run, takes a turn
from one ``EditBudget``, which keeps ``chat.update`` within Slack's rate tier:
with many runs at once each is edited less often, and final edits go first,
so none is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from . import messages
from .logview import end_of
from .models import Outcome, QueuedJob
from .notifier import Notifier, Posted

log = structlog.get_logger("progress")

TAIL_LINES = 5  # lines of stdout shown
TAIL_BYTES = 4096  # read from the end of stdout to find them
MAX_LINE_CHARS = 300


class EditBudget:
    """At most ``per_window`` edits in any ``window`` seconds, in all.

    Periodic edits may use all but ``reserve`` of them; final edits may use
    every one and are served before periodic ones. Turns are given in the
    order they were asked for. A turn counts for 2 % longer than ``window``,
    so that edits still fit the window when they reach Slack a little later
    or sooner than they were let go.
    """

    def __init__(
        self, per_window: int = 50, *, window: float = 60.0, reserve: int = 10
    ) -> None:
        if not 0 <= reserve < per_window:
            raise ValueError("the reserve must leave periodic edits some turns")
        self.per_window, self.window, self.reserve = per_window, window, reserve
        self._held = window * 1.02  # how long a turn counts
        self.granted: deque[float] = deque()  # loop times of this window's turns
        self.turns: deque[float] = deque(maxlen=10_000)  # of the latest turns
        self._waiting: deque[tuple[bool, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def take(self, *, final: bool = False) -> None:
        """Wait for a turn to edit."""
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append((final, turn))
        self._serve()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.granted.pop()  # given but not used: give it back
                self.turns.pop()
            raise

    def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self.granted and self.granted[0] <= now - self._held:
            self.granted.popleft()
        while self._waiting:
            index = next((i for i, (fin, _) in enumerate(self._waiting) if fin), 0)
            final, turn = self._waiting[index]
            if turn.done():  # its waiter was cancelled
                del self._waiting[index]
                continue
            limit = self.per_window if final else self.per_window - self.reserve
            if len(self.granted) >= limit:
                break
            del self._waiting[index]
            self.granted.append(now)
            self.turns.append(now)
            turn.set_result(None)
        if self._waiting and self._timer is None:
            self._timer = loop.call_at(self.granted[0] + self._held, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._serve()


@dataclass
class Pace:
    """When progress messages appear and how often they change."""

    after: float = 10.0  # seconds of running before the message
    every: float = 10.0  # seconds between edits, at least
    budget: EditBudget = field(default_factory=EditBudget)


class RunProgress:
    """The progress message of one run. ``start()`` when the run starts;
    ``finish(outcome)`` when it has ended."""

    def __init__(
        self,
        notifier: Notifier,
        pace: Pace,
        job: QueuedJob,
        stdout: Path | None,  # None: its stdout is not reported
    ) -> None:
        self._notifier, self._pace, self._job, self._stdout = (
            notifier,
            pace,
            job,
            stdout,
        )
        self._began = 0.0
        self._task: asyncio.Task[None] | None = None
        self._posting: asyncio.Future[Posted | None] | None = None

    def start(self) -> None:
        self._began = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._keep_up(), name="progress")

    async def finish(self, outcome: Outcome) -> None:
        """Stop the periodic edits; if the message was posted, edit it a last
        time to say how the run ended (waiting for a turn: the last edit is
        never dropped)."""
        elapsed = asyncio.get_running_loop().time() - self._began
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        posted = None
        if self._posting is not None:  # possibly still on its way
            with contextlib.suppress(Exception):
                posted = await self._posting
        if posted is not None:
            await self._pace.budget.take(final=True)
            text = messages.run_ended(self._job.type, outcome, elapsed)
            if not await self._notifier.edit(posted, text):
                log.warning("progress_edit_failed", job_id=self._job.id)

    async def _keep_up(self) -> None:
        await asyncio.sleep(self._pace.after)
        self._posting = asyncio.ensure_future(
            self._notifier.start_progress(self._job, await self._text())
        )
        posted = await asyncio.shield(self._posting)
        if posted is None:
            return
        while True:
            await asyncio.sleep(self._pace.every)
            await self._pace.budget.take()
            text = await self._text()
            if not await self._notifier.edit(posted, text):
                log.warning("progress_edit_failed", job_id=self._job.id)

    async def _text(self) -> str:
        elapsed = asyncio.get_running_loop().time() - self._began
        text = messages.running_for(self._job.type, elapsed)
        if self._stdout is None:
            return text
        tail = await asyncio.to_thread(last_lines, self._stdout)
        return f"{text}\n```\n{messages.no_pings(tail)}\n```" if tail else text


def last_lines(path: Path, count: int = TAIL_LINES) -> str:
    """The last ``count`` non-blank lines of a log, each cut to fit."""
    tail = end_of(path, TAIL_BYTES)
    lines = [line.rstrip() for line in tail.splitlines() if line.strip()]
    return "\n".join(
        line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…"
        for line in lines[-count:]
    )
