"""What the benchmarks share: result lines, statistics, a wired dispatcher,
a notifier that counts, and memory readings of a process tree from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bennettbot.dispatcher import Dispatcher
from bennettbot.jobconfig import JobConfig, parse_job_config
from bennettbot.jobqueue import JobQueue
from bennettbot.jobrun import Folders, RunKit
from bennettbot.models import QueuedJob, Requester, Runner, SystemClock
from bennettbot.notifier import Posted, Report
from bennettbot.runners import LocalRunner
from bennettbot.store import Store

REQUESTER = Requester(user="U1", channel="C1", thread_ts="1700000000.000100")
NAMESPACE = "bench"
MIB = 1024 * 1024


# ------------------------------------------------------------- results ----


@dataclass(frozen=True, slots=True)
class Check:
    """One target: ``text`` as printed (e.g. "median ≤ 5 ms") and whether met."""

    text: str
    ok: bool


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line of figures, the targets they are held to, and notes."""

    name: str
    figures: str
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        if not self.checks:
            return "INFO"
        return "PASS" if all(c.ok for c in self.checks) else "MISS"

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "figures": self.figures,
                "checks": [[c.text, c.ok] for c in self.checks],
                "notes": list(self.notes),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Line:
        raw = json.loads(text)
        return cls(
            name=raw["name"],
            figures=raw["figures"],
            checks=tuple(Check(t, ok) for t, ok in raw["checks"]),
            notes=tuple(raw["notes"]),
        )


def at_most(label: str, value: float, limit: float, unit: str) -> Check:
    return Check(f"{label} ≤ {limit:g} {unit}", value <= limit)


def at_least(label: str, value: float, limit: float, unit: str) -> Check:
    return Check(f"{label} ≥ {limit:g} {unit}", value >= limit)


# ---------------------------------------------------------- statistics ----


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), interpolating between ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p90, p99 and max of ``seconds``, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "median": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


# ------------------------------------------------------- job config ----


def job_config(
    jobs: Mapping[str, str], remote: Mapping[str, object] | None = None
) -> JobConfig:
    """A config with one namespace, ``bench``, holding ``jobs`` (name → template)."""
    table: dict[str, object] = {
        "jobs": {name: {"run_args_template": t} for name, t in jobs.items()}
    }
    if remote is not None:
        table["remote"] = dict(remote)
    return parse_job_config({NAMESPACE: table}, Path("bench-config.toml"))


# ----------------------------------------------------------- notifier ----


class CountingNotifier:
    """Counts finished jobs (their report or failure) and keeps failure texts.

    Cheaper than keeping every notice, so it does not weigh on a throughput
    figure; ``wait_finished`` waits, with a timeout, for a total.
    """

    def __init__(self) -> None:
        self.finished = 0
        self.failures: list[str] = []
        self.started_notices = 0
        self._changed = asyncio.Condition()

    async def _finish(self) -> None:
        async with self._changed:
            self.finished += 1
            self._changed.notify_all()

    async def post(self, channel: str, text: str, thread_ts: str = "") -> bool:
        return True

    async def notify_logs(self, text: str) -> None:
        self.started_notices += 1

    async def report(self, job: QueuedJob, report: Report) -> None:
        await self._finish()

    async def report_failure(self, job: QueuedJob, text: str) -> None:
        self.failures.append(text)
        await self._finish()

    async def start_progress(self, job: QueuedJob, text: str) -> Posted | None:
        return None

    async def edit(self, posted: Posted, text: str) -> bool:
        return False

    async def announce(self, channel: str, text: str) -> Posted | None:
        return None

    async def wait_finished(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.finished >= count)


# --------------------------------------------------------- dispatcher ----


@dataclass
class Rig:
    """A running dispatcher (real clock, store on a file) and its parts."""

    store: Store
    dispatcher: Dispatcher
    queue: JobQueue
    notifier: CountingNotifier
    folders: Folders


@contextlib.asynccontextmanager
async def running_dispatcher(
    root: Path, config: JobConfig, *, ssh_runner: Runner | None = None
) -> AsyncIterator[Rig]:
    """Open a store in ``root``, run ``Dispatcher.run()`` as a task; stop it on exit."""
    clock = SystemClock()
    store = await Store.open(root / "bot.db")
    try:
        notifier = CountingNotifier()
        folders = Folders(
            logs=root / "logs",
            host_logs=str(root / "logs"),
            workspace=root / "workspace",
            fab_workspace=root / "workspace-data",
        )
        folders.workspace.mkdir(parents=True, exist_ok=True)
        dispatcher = Dispatcher(
            RunKit(
                store=store,
                config=config,
                notifier=notifier,
                clock=clock,
                folders=folders,
                local_runner=LocalRunner(),
                ssh_runner=ssh_runner,
                bot_name="bennettbot",
            )
        )
        queue = JobQueue(store, config, clock, dispatcher.wake)
        loop = asyncio.create_task(dispatcher.run(), name="bench-dispatcher")
        try:
            yield Rig(store, dispatcher, queue, notifier, folders)
        finally:
            await dispatcher.stop(grace=5.0)
            async with asyncio.timeout(10):
                await loop
    finally:
        await store.close()


def quiet_logging(path: Path) -> None:
    """Log as the service does (structlog, JSON), but into ``path``.

    Benchmarks pay for rendering and writing every log line, as the service
    does, without printing them.
    """
    import structlog

    from bennettbot.logs import configure_logging

    configure_logging(json=True)
    sink = path.open("a", encoding="utf-8")  # open for the worker's life
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))


# ------------------------------------------------------ process memory ----


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """``(pid, fields of /proc/PID/stat after the command name)`` per process.

    Field 0 is the state, 1 the ppid, 11 and 12 user and system CPU ticks.
    """
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as file:
                stat = file.read()
        except OSError:
            continue
        # The command name may hold spaces and ")": fields follow the last ")".
        yield int(entry.name), stat.rsplit(")", 1)[1].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, fields in proc_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (found through the ppid in /proc)."""
    children = _children_map()
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def _status_kib(pid: int | str, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as file:
            for line in file:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kib(pid: int) -> int | None:
    """Proportional set size from ``smaps_rollup``; None if unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass(frozen=True, slots=True)
class TreeMemory:
    processes: int
    rss_mib: float  # summed over the tree (shared pages count once per process)
    pss_mib: float | None  # None when some process's smaps_rollup was unreadable
    root_rss_mib: float  # the top process alone
    commands: tuple[str, ...]  # each process's name (``comm``)


def command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as file:
            return file.read().strip()
    except OSError:
        return ""


def tree_memory(pid: int) -> TreeMemory:
    """RSS (and PSS) summed over ``pid`` and its descendants."""
    rss = pss = 0
    pss_ok = True
    pids = process_tree(pid)
    for member in pids:
        rss += _status_kib(member, "VmRSS") or 0
        member_pss = pss_kib(member)
        if member_pss is None:
            pss_ok = False
        else:
            pss += member_pss
    return TreeMemory(
        processes=len(pids),
        rss_mib=rss / 1024,
        pss_mib=pss / 1024 if pss_ok else None,
        root_rss_mib=(_status_kib(pid, "VmRSS") or 0) / 1024,
        commands=tuple(command_name(member) for member in pids),
    )


def peak_rss_mib(pid: int | str = "self") -> float:
    """The high-water mark of a process's RSS (VmHWM)."""
    return (_status_kib(pid, "VmHWM") or 0) / 1024


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (jobs run in their own sessions,
    so killing a process group would miss them)."""
    for member in reversed(process_tree(pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)


async def start_service(
    role: str, root: Path, env: dict[str, str], stderr: IO[bytes]
) -> asyncio.subprocess.Process:
    """``python -m bennettbot --role ROLE`` in a session of its own, run from
    ``root`` so that no stray ``.env`` is read."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bennettbot",
        "--role",
        role,
        cwd=root,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
