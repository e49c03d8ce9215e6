"""Shared fixtures: a fake clock, a database per test, a wired dispatcher."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bennettbot.dispatcher import Dispatcher
from bennettbot.emulator import SlackEmulator
from bennettbot.jobconfig import JobConfig, parse_job_config
from bennettbot.jobqueue import JobQueue
from bennettbot.jobrun import Folders, RunKit
from bennettbot.models import FakeClock, Requester
from bennettbot.notifier import RecordingNotifier
from bennettbot.runners import LocalRunner
from bennettbot.settings import SHIPPED_WORKSPACE, Settings
from bennettbot.store import Store

ALICE = Requester(user="U1", channel="C1", thread_ts="1700000000.000100")

# What each role needs set, as SPEC §3 says (restated here, not imported).
NEEDED = {
    "bot": {
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_USERNAME",
        "SLACK_TECH_SUPPORT_CHANNEL",
    },
    "dispatcher": {
        "SLACK_BOT_TOKEN",
        "SLACK_APP_USERNAME",
        "SLACK_LOGS_CHANNEL",
        "SLACK_TECH_SUPPORT_CHANNEL",
        "WEBHOOK_ORIGIN",
        "EBMBOT_WEBHOOK_SECRET",
    },
    "web": {
        "SLACK_BOT_TOKEN",
        "GITHUB_WEBHOOK_SECRET",
        "WEBHOOK_ORIGIN",
        "EBMBOT_WEBHOOK_SECRET",
    },
}
NEEDED["all"] = NEEDED["bot"] | NEEDED["dispatcher"] | NEEDED["web"]


async def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for a condition that nothing signals (a file, another process)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def job_config(toml: str, path: str = "test-config.toml") -> JobConfig:
    return parse_job_config(tomllib.loads(toml), Path(path))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting in the environment, and a working folder with no ``.env``."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    """A Slack workspace emulator on loopback."""
    async with SlackEmulator() as emulator:
        yield emulator


E2E_JOBS = Path(__file__).parent / "fixtures" / "e2e_jobs.toml"
E2E_GITHUB_SECRET = "e2e-github-secret"
E2E_CALLBACK_SECRET = "e2e-callback-secret"


@pytest.fixture
def e2e_jobs() -> Path:
    """The job config of the ``bot`` fixture; a test module may override it."""
    return E2E_JOBS


@pytest.fixture
async def bot(slack, tmp_path: Path, clean_env: Path, e2e_jobs: Path):
    """The bot and dispatcher roles against the emulator, with the job config
    ``e2e_jobs`` (by default ``fixtures/e2e_jobs.toml``)."""
    from e2e_rig import running_bot  # it imports this module

    async with running_bot(
        slack,
        tmp_path,
        JOB_CONFIG_PATH=e2e_jobs,
        WORKSPACE_DIR=tmp_path / "workspace",  # none: jobs run in FAB_WORKSPACE_DIR
        GITHUB_WEBHOOK_SECRET=E2E_GITHUB_SECRET,
        EBMBOT_WEBHOOK_SECRET=E2E_CALLBACK_SECRET,
    ) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "bot.db")
    yield opened
    await opened.close()


@dataclass
class Rig:
    """A dispatcher with its store, queue, notifier and folders."""

    store: Store
    dispatcher: Dispatcher
    queue: JobQueue
    notifier: RecordingNotifier
    clock: FakeClock
    folders: Folders


def make_rig(
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    config: JobConfig,
    **options: object,
) -> Rig:
    notifier = RecordingNotifier()
    folders = Folders(
        logs=tmp_path / "logs",
        host_logs="/host/logs",
        workspace=tmp_path / "workspace",
        fab_workspace=tmp_path / "workspace-data",
    )
    folders.workspace.mkdir(exist_ok=True)
    poll_interval = float(options.pop("poll_interval", 5.0))  # type: ignore[arg-type]
    kit = RunKit(
        store=store,
        config=config,
        notifier=notifier,
        clock=clock,
        folders=folders,
        local_runner=LocalRunner(),
        bot_name="bennettbot",
        **options,  # type: ignore[arg-type]
    )
    dispatcher = Dispatcher(kit, poll_interval=poll_interval)
    queue = JobQueue(store, config, clock, dispatcher.wake)
    return Rig(store, dispatcher, queue, notifier, clock, folders)


@pytest.fixture
def shipped_workspace() -> Path:
    return SHIPPED_WORKSPACE
