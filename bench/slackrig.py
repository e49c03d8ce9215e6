"""What the Slack benchmarks share: the emulator, hosted apart from the bot;
the bot wired to it in the worker's main loop; figures of acks.

The emulator and the bot must not share an event loop: the emulator's own
work (building and sending envelopes, answering Web API calls) would then
hold up the bot's acks and inflate the figures. Two arrangements keep them
apart; ``BENCH_SLACK_EMULATOR`` picks one:

- ``process`` (the default): the emulator runs in a process of its own
  (``bench.slackhost``), driven over a pipe. Like real Slack, it uses no CPU
  time, and holds no GIL, of the bot's.
- ``thread``: the emulator serves from a thread of the worker with its own
  event loop, driven with ``asyncio.run_coroutine_threadsafe``. Its work then
  competes with the bot's for the GIL, which inflates the figures.

Either way, what the emulator does is a scenario of ``bench.slackscenarios``,
run in the emulator's loop, and every time is ``time.perf_counter()`` taken
there: one clock at both ends of each latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bennettbot.app import Engine
from bennettbot.emulator import SlackEmulator
from bennettbot.emulator.harness import emulator_settings, running_roles
from bennettbot.settings import Settings, load_settings

from .common import kill_tree, percentile
from .slackscenarios import SCENARIOS, new_emulator

JSON = dict[str, Any]
REPO_ROOT = Path(__file__).resolve().parent.parent
CONNECT_TIMEOUT = 15.0
ARRANGEMENTS = {
    "process": "emulator in a process of its own, bot and dispatcher in the "
    "worker's main loop",
    "thread": "emulator on a thread of the worker with its own event loop, bot "
    "and dispatcher in the worker's main loop (they share the GIL)",
}

# The job config of the Slack benchmarks: one `echo` job, as in the end-to-end
# tests, and the command that asks for it.
JOBS_TOML = """\
[test]
description = "Jobs for the Slack benchmarks"

[test.jobs.echo]
run_args_template = "echo {word}"
report_stdout = true

[[test.slack]]
command = "echo [word]"
action = "schedule_job"
job_type = "echo"
"""


def arrangement() -> str:
    chosen = os.environ.get("BENCH_SLACK_EMULATOR", "process")
    if chosen not in ARRANGEMENTS:
        raise ValueError(f"BENCH_SLACK_EMULATOR={chosen!r}: use process or thread")
    return chosen


class EmulatorHost(Protocol):
    kind: str
    api_url: str
    bot_token: str
    app_token: str

    async def start(self, root: Path) -> None: ...
    async def run(self, scenario: str, **kwargs: Any) -> JSON: ...
    async def stop(self) -> None: ...


class EmulatorThread:
    """The emulator serving from a daemon thread with its own event loop."""

    kind = "thread"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="slack-emulator", daemon=True
        )
        self._slack: SlackEmulator | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _call(self, coroutine: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await asyncio.wrap_future(future)

    async def start(self, root: Path) -> None:
        self._thread.start()

        async def start() -> SlackEmulator:
            return await new_emulator().start()

        self._slack = slack = await self._call(start())
        self.api_url, self.bot_token, self.app_token = (
            slack.api_url,
            slack.bot_token,
            slack.app_token,
        )

    async def run(self, scenario: str, **kwargs: Any) -> JSON:
        assert self._slack is not None, "not started"
        return await self._call(SCENARIOS[scenario](self._slack, **kwargs))

    async def stop(self) -> None:
        if self._slack is not None:
            await self._call(self._slack.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        if not self._thread.is_alive():
            self.loop.close()


class EmulatorProcess:
    """The emulator in a process of its own (``bench.slackhost``)."""

    kind = "process"

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self, root: Path) -> None:
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p
        )
        with (root / "slackhost.stderr").open("wb") as stderr:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.slackhost",
                cwd=REPO_ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=64 * 1024 * 1024,
            )
        async with asyncio.timeout(CONNECT_TIMEOUT):
            info = await self._read()
        self.api_url = info["api_url"]
        self.bot_token = info["bot_token"]
        self.app_token = info["app_token"]

    async def _read(self) -> JSON:
        assert self._process is not None and self._process.stdout is not None
        line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the emulator's process ended (status {await self._process.wait()})"
            )
        return json.loads(line)

    async def run(self, scenario: str, **kwargs: Any) -> JSON:
        assert self._process is not None and self._process.stdin is not None
        async with self._lock:
            request = {"name": scenario, "kwargs": kwargs}
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            await self._process.stdin.drain()
            reply = await self._read()
        if not reply["ok"]:
            raise RuntimeError(f"scenario {scenario} failed:\n{reply['error']}")
        return reply["result"]

    async def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            kill_tree(process.pid)
            await process.wait()


@contextlib.asynccontextmanager
async def emulator(root: Path) -> AsyncIterator[EmulatorHost]:
    host: EmulatorHost = (
        EmulatorThread() if arrangement() == "thread" else EmulatorProcess()
    )
    try:
        await host.start(root)
        yield host
    finally:
        await host.stop()


def bot_settings(
    root: Path, host: EmulatorHost, jobs_toml: str = JOBS_TOML
) -> Settings:
    """Settings for the bot and dispatcher roles, pointed at the emulator."""
    config = root / "jobs.toml"
    config.write_text(jobs_toml)
    for name in Settings.model_fields:  # nothing from the worker's environment
        os.environ.pop(name, None)
    os.chdir(root)  # and no stray .env
    return load_settings(
        **emulator_settings(host, root),
        WORKSPACE_DIR=root / "workspace",
        JOB_CONFIG_PATH=config,
    )


@dataclass
class SlackRig:
    host: EmulatorHost
    engine: Engine
    connect_seconds: float  # engine opening → check file exists

    @property
    def arrangement(self) -> str:
        return ARRANGEMENTS[self.host.kind]


@contextlib.asynccontextmanager
async def running_bot(
    root: Path, jobs_toml: str = JOBS_TOML
) -> AsyncIterator[SlackRig]:
    """The emulator, apart; the bot and dispatcher roles in this loop,
    connected to it (the check file exists). All stopped on exit."""
    async with emulator(root) as host:
        settings = bot_settings(root, host, jobs_toml)
        began = time.perf_counter()
        async with running_roles(settings, timeout=CONNECT_TIMEOUT) as engine:
            connected = time.perf_counter() - began
            await host.run("connected")
            yield SlackRig(host, engine, connected)


# ------------------------------------------------------------ figures ----


@dataclass(frozen=True, slots=True)
class AckFigures:
    count: int
    acked: int
    latencies_ms: list[float]

    @classmethod
    def from_json(cls, data: JSON) -> AckFigures:
        return cls(data["count"], data["acked"], data["latencies_ms"])

    @property
    def unacked(self) -> int:
        return self.count - self.acked

    def stat(self, q: float) -> float:
        return percentile(self.latencies_ms, q) if self.latencies_ms else float("nan")

    @property
    def max(self) -> float:
        return max(self.latencies_ms, default=float("nan"))

    def at_least(self, ms: float) -> int:
        return sum(1 for latency in self.latencies_ms if latency >= ms)

    def describe(self) -> str:
        return (
            f"p50 {self.stat(50):.1f} ms, p99 {self.stat(99):.1f} ms, "
            f"max {self.max:.1f} ms"
        )


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
