"""End to end through the emulator, with the real bolt client and real
processes: stopping a running job, the run history, live progress."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bennettbot.models import Outcome, Requester
from bennettbot.progress import EditBudget, Pace
from e2e_rig import running_bot
from sshservers import (  # noqa: F401 (fixtures)
    assert_killed,
    ssh_keys_fixture,
    sshd_fixture,
)

JOBS = Path(__file__).parent / "fixtures" / "operating_jobs.toml"
GUEST_ASKED = Requester(user="U0GUEST", channel="C0GENERAL", thread_ts="1.000100")


@pytest.fixture
def e2e_jobs() -> Path:
    return JOBS  # for the `bot` fixture


async def mention(slack, user: str, text: str) -> str:
    """Post ``@bennettbot TEXT`` in #general as ``user``; its ts."""
    return (await slack.post(user, "general", f"<@U0BOT> {text}")).ts


async def ask(slack, user: str, text: str, contains: str | None = None) -> str:
    asked = await mention(slack, user, text)
    reply = await slack.wait_for_reply("C0GENERAL", asked, contains=contains)
    return reply.text


async def running_job(bot, job_type: str) -> int:
    async def started() -> int | None:
        for job in await bot.engine.store.list_jobs():
            if job.type == job_type and job.started_at is not None:
                return job.id
        return None

    async with asyncio.timeout(10):
        while (job_id := await started()) is None:
            await asyncio.sleep(0.01)
    return job_id


async def run_ended(bot, job_id: int, timeout: float = 15):
    async with asyncio.timeout(timeout):
        while True:
            for run in await bot.engine.store.runs():
                if run.job_id == job_id and run.ended_at is not None:
                    return run
            await asyncio.sleep(0.01)


def gone(pid: int) -> bool:
    """No such process, not even a zombie (it was reaped)."""
    return not Path(f"/proc/{pid}").exists()


# ------------------------------------------------------------------ stop ----


async def test_stop_job_id_stops_a_running_job_and_tells_its_thread(bot, tmp_path):
    slack = bot.slack
    asked = await mention(slack, "alice", "ops sleepy")
    job_id = await running_job(bot, "ops_sleepy")
    pid_file = tmp_path / "workspace-data" / "ops" / "sleepy.pid"
    async with asyncio.timeout(10):
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())

    reply = await ask(slack, "bob", f"stop job id {job_id}")
    assert reply == f"Stopping job {job_id} (`ops_sleepy`); its thread will be told."
    told = await slack.wait_for_reply("C0GENERAL", asked, contains="was stopped")
    assert told.text.startswith(f"Job {job_id} (`ops_sleepy`) was stopped by <@U0BOB>")

    run = await run_ended(bot, job_id)
    assert run.outcome is Outcome.STOPPED and run.message == "stopped by U0BOB"
    async with asyncio.timeout(10):
        while not gone(pid):
            await asyncio.sleep(0.01)
    # not a failure: nothing goes to tech-support
    assert slack.messages("tech-support") == []
    assert await bot.engine.store.list_jobs() == []


async def test_stop_and_remove_point_to_each_other(bot):
    slack = bot.slack
    await mention(slack, "alice", "ops sleepy")
    running = await running_job(bot, "ops_sleepy")
    second = await ask(slack, "alice", "ops sleepy")
    assert f"`@bennettbot stop job id {running}` stops the running one" in second
    waiting = next(j for j in await bot.engine.store.list_jobs() if not j.started_at)

    assert (await ask(slack, "alice", f"stop job id {waiting.id}")).startswith(
        f"Job {waiting.id} (`ops_sleepy`) has not started, so there is nothing to stop"
    )
    assert await ask(slack, "alice", f"remove job id {running}") == (
        f"Job {running} (`ops_sleepy`) is running, so it stays: "
        f"`@bennettbot stop job id {running}` stops it."
    )
    assert (await ask(slack, "alice", "stop job id 424242")).startswith(
        "There is no job with id 424242."
    )
    await ask(slack, "alice", f"remove job id {waiting.id}")
    await ask(slack, "alice", f"stop job id {running}")
    assert (await run_ended(bot, running)).outcome is Outcome.STOPPED


async def test_a_guest_cannot_stop_a_restricted_job(bot):
    slack = bot.slack
    await mention(slack, "alice", "secret sleepy")
    job_id = await running_job(bot, "secret_sleepy")
    refused = await ask(slack, "guest", f"stop job id {job_id}")
    assert "only for members of the team" in refused
    assert await bot.engine.store.stop_requests(bot.engine.dispatcher.holder) == []
    await ask(slack, "alice", f"stop job id {job_id}")
    assert (await run_ended(bot, job_id)).outcome is Outcome.STOPPED


# --------------------------------------------------------------- history ----


async def test_history_lists_runs_of_every_outcome_newest_first(bot):
    slack = bot.slack
    store = bot.engine.store
    for command in ("ok", "bad", "slow"):  # each one's report ends its run
        asked = await mention(slack, "alice", f"ops {command}")
        await slack.wait_for_reply("C0GENERAL", asked)
    await mention(slack, "bob", "ops sleepy")
    sleepy = await running_job(bot, "ops_sleepy")
    await ask(slack, "alice", f"stop job id {sleepy}")
    await run_ended(bot, sleepy)
    # a run whose dispatcher died: the next holder of the lease records it
    # as interrupted (as at a start after a crash)
    later = bot.clock.now() + timedelta(days=1)
    await store.schedule_job("ops_ok", {}, GUEST_ASKED, later)
    [orphan] = await store.reserve_due(later, "a-dispatcher-that-died")
    await store.start_run(orphan, "", "a-dispatcher-that-died")
    await store.recover_interrupted(bot.clock.now(), bot.engine.dispatcher.holder)

    reply = await ask(slack, "alice", "history ops", contains="runs of")
    lines = reply.splitlines()
    assert lines[0] == "The last 5 runs of `ops`, newest first:"
    outcomes = [line.split("`")[2].split(",")[0].strip() for line in lines[1:6]]
    assert outcomes == ["interrupted", "stopped", "timed out", "failed", "succeeded"]
    assert "asked by @guest" in lines[1] and "asked by @bob" in lines[2]
    assert "asked by @alice" in lines[5]
    workspace = slack.workspace.domain
    link = f"(<https://{workspace}.slack.com/archives/C0GENERAL/p"
    assert all(link in line for line in lines[2:6])
    assert lines[-1].startswith("Logs by run id: `@bennettbot showlogs tail stdout ")


async def test_history_of_a_type_and_of_nothing_yet(bot):
    slack = bot.slack
    assert await ask(slack, "alice", "history ops_bad") == "No runs of `ops_bad` yet."
    asked = await mention(slack, "alice", "ops bad")
    await slack.wait_for_reply("C0GENERAL", asked)
    reply = await ask(slack, "alice", "history ops_bad", contains="newest first")
    assert reply.splitlines()[0] == "The last run of `ops_bad`, newest first:"
    assert reply.splitlines()[1].startswith("• ")
    assert "`ops_bad` failed" in reply
    everything = await ask(slack, "alice", "history", contains="newest first")
    assert everything.startswith("The last run, newest first:")


async def test_showlogs_takes_a_run_id_from_history(bot):
    slack = bot.slack
    asked = await mention(slack, "alice", "ops ticker")
    await slack.wait_for_reply("C0GENERAL", asked, contains="tick 8", timeout=15)
    [run] = await bot.engine.store.runs()
    reply = await ask(slack, "alice", f"showlogs tail stdout {run.id}")
    assert "tick 8" in reply


# -------------------------------------------------------------- progress ----


async def test_a_long_run_shows_progress_within_the_edit_budget(bot):
    slack = bot.slack
    budget = EditBudget(4, window=1.0, reserve=1)
    bot.engine.dispatcher.kit.pace = Pace(after=0.3, every=0.2, budget=budget)
    asked = await mention(slack, "alice", "ops ticker")

    def report():  # all of stdout (progress shows the last lines only)
        replies = slack.replies("C0GENERAL", asked, user="bennettbot")
        return next(
            (m for m in replies if "tick 1" in m.text and "tick 8" in m.text), None
        )

    result = await slack.wait_for(report, timeout=15)
    progress = await slack.wait_for_reply(
        "C0GENERAL", asked, contains="`ops_ticker` succeeded after", timeout=10
    )
    assert progress.ts < result.ts  # posted while it ran; the result is apart
    updates = [
        c for c in slack.calls_to("chat.update") if c.params["ts"] == progress.ts
    ]
    assert len(updates) >= 2  # at least one while it ran, and the last one
    running = [c.params["text"] for c in updates[:-1]]
    assert any("has been running for" in text for text in running)
    shown = next(text for text in running if "tick" in text)
    assert shown.count("tick") <= 5 and "&lt;!channel&gt;" in shown
    assert "<!channel>" not in shown
    # every edit took a turn of the budget, and the budget let no more than
    # 4 go in any 1 s (as they left: arrival times also carry the load's jitter)
    assert len(budget.turns) == len(slack.calls_to("chat.update"))
    times = sorted(budget.turns)
    for first, later in zip(times, times[4:], strict=False):
        assert later - first >= 1.0


async def test_no_progress_message_when_the_job_turns_it_off(bot):
    slack = bot.slack
    bot.engine.dispatcher.kit.pace = Pace(after=0.1, every=0.1)
    asked = await mention(slack, "alice", "ops silent ticker")
    job_id = await running_job(bot, "ops_silent_ticker")
    await run_ended(bot, job_id)
    await slack.wait_for_reply("C0GENERAL", asked, contains="succeeded")
    assert not [m for m in slack.replies("C0GENERAL", asked) if "running for" in m.text]
    assert slack.calls_to("chat.update") == []


async def test_stop_a_remote_job_over_the_loopback_sshd(
    slack, tmp_path, clean_env, ssh_keys, sshd
):
    config = tmp_path / "remote_jobs.toml"
    config.write_text(
        f"""
[far]
[far.remote]
host = "127.0.0.1"
port = {sshd.port}
user = "{sshd.user}"
cwd = "{tmp_path}"

[far.jobs.sleepy]
run_args_template = 'sleep 60 & echo "$$ $!" > far.pids; wait'

[[far.slack]]
command = "sleepy"
action = "schedule_job"
job_type = "sleepy"
"""
    )
    async with running_bot(
        slack,
        tmp_path,
        JOB_CONFIG_PATH=config,
        WORKSPACE_DIR=tmp_path / "workspace",
        SSH_KEY_PATH=ssh_keys.client_key_path,
        SSH_KNOWN_HOSTS=sshd.known_hosts,
    ) as bot:
        bot.engine.dispatcher.kit.ssh_runner.stop_grace = 0.5
        asked = await mention(slack, "alice", "far sleepy")
        job_id = await running_job(bot, "far_sleepy")
        pids = tmp_path / "far.pids"
        async with asyncio.timeout(10):
            while len(pids.read_text().split() if pids.exists() else []) < 2:
                await asyncio.sleep(0.01)
        shell, child = map(int, pids.read_text().split())

        await ask(slack, "bob", f"stop job id {job_id}")
        await slack.wait_for_reply("C0GENERAL", asked, contains="was stopped by")
        assert (await run_ended(bot, job_id)).outcome is Outcome.STOPPED
    await assert_killed(sshd, shell, child)  # root's sessions ignore signals


# ------------------------------------------------------------- schedules ----


async def test_a_schedule_posts_in_its_channel_and_reports_in_that_thread(bot):
    slack, dispatcher = bot.slack, bot.engine.dispatcher
    [plan] = dispatcher.timetable.plans
    async with asyncio.timeout(10):  # the dispatcher has seen it: not missed
        while await bot.engine.store.schedule_mark(plan.key) is None:
            await asyncio.sleep(0.01)
    due = plan.schedule.next_after(bot.clock.now())
    bot.clock.set(due)
    dispatcher.wake()

    def announced():
        return next(
            (m for m in slack.messages("general") if m.text.startswith("⏰")), None
        )

    message = await slack.wait_for(announced, timeout=10)
    assert message.thread_ts is None  # a top-level message
    assert message.text == (f"⏰ Scheduled: `ops ok`, due {due:%a %Y-%m-%d %H:%M} UTC.")
    reply = await slack.wait_for_reply("C0GENERAL", message.ts, contains="succeeded")
    assert reply.text == "Command `ops_ok` succeeded"
    status = await ask(slack, "alice", "status")
    assert "[schedule] `ops ok` next at" in status


# -------------------------------------------------------------- App Home ----


def home_text(view: dict) -> str:
    texts = []
    for block in view["blocks"]:
        if block["type"] in ("section", "header"):
            texts.append(block["text"]["text"])
        elif block["type"] == "context":
            texts.extend(element["text"] for element in block["elements"])
    return "\n".join(texts)


async def test_the_home_tab_shows_jobs_runs_and_hides_restricted_arguments(bot):
    slack, queue = bot.slack, bot.engine.queue
    asked = await mention(slack, "alice", "ops ok")
    await slack.wait_for_reply("C0GENERAL", asked)
    await mention(slack, "bob", "ops sleepy")
    sleepy = await running_job(bot, "ops_sleepy")
    alice = Requester(user="U0ALICE", channel="C0GENERAL", thread_ts="1.1")
    await queue.schedule_job("secret_sleepy", {"code": "hunter2"}, alice, 3600)

    await slack.open_home("alice")
    view = await slack.wait_for(lambda: slack.home_views.get("U0ALICE"), timeout=10)
    seen = home_text(view)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert "• `ops_sleepy`, asked by @bob, for " in seen
    assert "• `secret_sleepy` (code=hunter2), due " in seen
    assert "`ops_ok` succeeded, took " in seen
    assert "[schedule]" not in seen and "`ops ok` next at " in seen

    await slack.open_home("guest")
    view = await slack.wait_for(lambda: slack.home_views.get("U0GUEST"), timeout=10)
    assert "hunter2" not in home_text(view)
    assert "• `secret_sleepy`, due " in home_text(view)
    [published] = [c for c in slack.calls_to("views.publish") if c.ok][:1]
    assert published.params["user_id"] == "U0ALICE"
    await ask(slack, "bob", f"stop job id {sleepy}")
    await run_ended(bot, sleepy)
