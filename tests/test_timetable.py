"""Schedules: validated at load, fired once at their cron times (in their
time zone, across clock changes), once late after downtime, never twice."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bennettbot.dispatcher import Dispatcher
from bennettbot.jobconfig import JobConfigError, ScheduleDef, parse_job_config
from bennettbot.jobqueue import JobQueue
from bennettbot.jobrun import Folders, RunKit
from bennettbot.lease import Lease
from bennettbot.notifier import RecordingNotifier
from bennettbot.runners import LocalRunner
from bennettbot.timetable import Timetable
from conftest import job_config

CONFIG = (Path(__file__).parent / "fixtures" / "schedules.toml").read_text()


def problems(extra: str) -> list[str]:
    with pytest.raises(JobConfigError) as raised:
        parse_job_config(tomllib.loads(CONFIG + extra), Path("jobs.toml"))
    return raised.value.problems


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (
            'command = "rota report"\ncron = "0 9 * * MON *"',
            "jobs.toml: [techsupport]: schedules[1] ('rota report').cron: Value error, "
            "cron needs five fields",
        ),
        (
            'command = "rota report"\ncron = "0 25 * * MON"',
            "jobs.toml: [techsupport]: schedules[1] ('rota report').cron: Value error, "
            "invalid cron expression (Bad hour)",
        ),
        (
            'command = "rota report"\ncron = "0 9 * * MON"\ntimezone = "Mars/Olympus"',
            "jobs.toml: [techsupport]: schedules[1] ('rota report').timezone: Value "
            "error, unknown time zone 'Mars/Olympus'",
        ),
        (
            'command = "rota dance"\ncron = "0 9 * * MON"',
            "jobs.toml: [techsupport]: schedules[1] ('rota dance').command: not a "
            "command of [techsupport]",
        ),
        (
            'command = "say hello"\ncron = "0 9 * * MON"',
            "jobs.toml: [techsupport]: schedules[1] ('say hello').command: a "
            "scheduled command takes no params",
        ),
    ],
)
def test_a_bad_schedule_is_named_by_file_namespace_and_key(schedule, expected):
    found = problems(f"\n[[techsupport.schedules]]\n{schedule}\n")
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_schedule_needs_a_channel_somewhere():
    config = CONFIG.replace('default_channel = "#tech"', "")
    with pytest.raises(JobConfigError) as raised:
        parse_job_config(tomllib.loads(config), Path("jobs.toml"))
    assert raised.value.problems == [
        "jobs.toml: [techsupport]: schedules[0] ('rota report').channel: needed, "
        "since [techsupport] has no default_channel"
    ]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_monday_9am_in_london_follows_the_clock_changes():
    schedule = ScheduleDef(
        command="rota report", cron="0 9 * * MON", timezone="Europe/London"
    )
    times, moment = [], utc(2026, 10, 12)
    for _ in range(3):
        moment = schedule.next_after(moment)
        times.append(moment)
    # British Summer Time ends on Sunday 25 October 2026
    assert times == [utc(2026, 10, 12, 8), utc(2026, 10, 19, 8), utc(2026, 10, 26, 9)]
    times, moment = [], utc(2027, 3, 15)
    for _ in range(3):
        moment = schedule.next_after(moment)
        times.append(moment)
    # and starts again on Sunday 28 March 2027
    assert times == [utc(2027, 3, 15, 9), utc(2027, 3, 22, 9), utc(2027, 3, 29, 8)]


class Rig:
    def __init__(self, store, clock, config=CONFIG) -> None:
        self.store, self.clock = store, clock
        self.config = job_config(config)
        self.notifier = RecordingNotifier()
        self.queue = JobQueue(store, self.config, clock)
        self.timetable = Timetable(
            self.config, store, self.queue, self.notifier, clock, "bennettbot"
        )

    def announcements(self) -> list[str]:
        return [n.text for n in self.notifier.of_kind("post") if n.channel == "#tech"]


async def test_a_schedule_fires_at_its_times_across_a_clock_change(store, clock):
    rig = Rig(store, clock)
    clock.set(utc(2026, 10, 18, 12))  # a Sunday
    assert await rig.timetable.fire_due() == utc(2026, 10, 19, 8)
    assert rig.announcements() == []  # first seen: nothing was missed

    clock.set(utc(2026, 10, 19, 8))
    assert await rig.timetable.fire_due() == utc(2026, 10, 26, 9)  # after the change
    [job] = await store.list_jobs()
    assert job.type == "techsupport_rota"
    assert job.requester.channel == "#tech" and job.requester.thread_ts
    assert rig.announcements() == [
        "⏰ Scheduled: `techsupport rota report`, due Mon 2026-10-19 09:00 "
        "Europe/London."
    ]
    assert await rig.timetable.fire_due() == utc(2026, 10, 26, 9)  # no second fire
    await store.remove_job(job.id)

    clock.set(utc(2026, 10, 26, 9))
    await rig.timetable.fire_due()
    assert len(rig.announcements()) == 2
    assert "due Mon 2026-10-26 09:00 Europe/London." in rig.announcements()[-1]


async def test_downtime_over_three_times_gives_one_late_run(store, clock):
    rig = Rig(store, clock)
    clock.set(utc(2026, 11, 1))
    await rig.timetable.fire_due()
    clock.set(utc(2026, 11, 2, 9))  # fires on time
    await rig.timetable.fire_due()
    assert len(rig.announcements()) == 1

    # down from then until after three more Mondays
    clock.set(utc(2026, 11, 25, 15))
    assert await rig.timetable.fire_due() == utc(2026, 11, 30, 9)
    assert len(rig.announcements()) == 2
    assert rig.announcements()[-1] == (
        "⏰ Scheduled: `techsupport rota report`, due Mon 2026-11-09 09:00 "
        "Europe/London. Late: the bot was not running then, so it runs now."
    )
    await rig.timetable.fire_due()
    assert len(rig.announcements()) == 2


async def test_a_changed_schedule_is_new_and_has_missed_nothing(store, clock):
    clock.set(utc(2026, 11, 1))
    await Rig(store, clock).timetable.fire_due()
    changed = Rig(store, clock, CONFIG.replace("0 9 * * MON", "30 9 * * MON"))
    clock.set(utc(2026, 12, 1))  # long after the old schedule's times
    assert await changed.timetable.fire_due() == utc(2026, 12, 7, 9, 30)
    assert changed.announcements() == []


async def test_status_shows_each_schedules_next_time(store, clock):
    from bennettbot import messages

    rig = Rig(store, clock)
    clock.set(utc(2026, 11, 30, 12))
    status = messages.status(await rig.queue.status())
    assert status == (
        "[schedule] `techsupport rota report` next at Mon 2026-12-07 09:00 "
        "Europe/London"
    )


async def test_a_standby_dispatcher_fires_nothing(store, clock, tmp_path):
    """Two dispatchers on one database: only the lease's holder fires."""
    rig = Rig(store, clock)
    dispatchers = []
    for name in ("first", "second"):
        kit = RunKit(
            store=store,
            config=rig.config,
            notifier=rig.notifier,
            clock=clock,
            folders=Folders(tmp_path / "logs", "", tmp_path / "ws", tmp_path / "fab"),
            local_runner=LocalRunner(),
        )
        dispatcher = Dispatcher(kit, lease=Lease(store, clock, holder=name))
        dispatcher.timetable = rig.timetable
        dispatchers.append(dispatcher)
    clock.set(utc(2026, 11, 1))
    for dispatcher in dispatchers:
        await dispatcher.run_once()
    assert [d.active for d in dispatchers] == [True, False]

    clock.set(utc(2026, 11, 2, 9))
    for dispatcher in reversed(dispatchers):  # the standby looks first
        await dispatcher.run_once()
    assert len(rig.announcements()) == 1
    for dispatcher in dispatchers:
        await dispatcher.stop(grace=1)


def test_the_shipped_config_schedules_the_rotas_commented_out():
    from bennettbot.settings import SHIPPED_JOB_CONFIG

    text = SHIPPED_JOB_CONFIG.read_text()
    for command in ("techsupport", "inbox"):
        block = (
            f"# [[{command}.schedules]]\n"
            '# command = "rota report"\n'
            '# cron = "0 9 * * MON"\n'
            '# timezone = "Europe/London"\n'
            '# channel = "#tech"\n'
        )
        assert block in text
        uncommented = text.replace(block, block.replace("# ", ""))
        parse_job_config(tomllib.loads(uncommented), SHIPPED_JOB_CONFIG)


async def test_a_schedule_does_not_ask_for_confirmation(store, clock):
    confirming = CONFIG.replace(
        '[techsupport.jobs.rota]\nrun_args_template = "true"\n',
        '[techsupport.jobs.rota]\nrun_args_template = "true"\nconfirm = true\n',
    )
    assert confirming != CONFIG
    rig = Rig(store, clock, confirming)
    clock.set(utc(2026, 11, 1))
    await rig.timetable.fire_due()
    clock.set(utc(2026, 11, 2, 9))
    await rig.timetable.fire_due()
    [job] = await store.list_jobs()
    assert job.type == "techsupport_rota"  # queued at once, no question
