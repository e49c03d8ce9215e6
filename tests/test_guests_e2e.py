"""End to end through the emulator: what guests, reminders and jobs may see
and do (least privilege)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from e2e_rig import running_bot

JOBS = Path(__file__).parent / "fixtures" / "guest_jobs.toml"
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "gh-secret-8d1f",
    "EBMBOT_WEBHOOK_SECRET": "cb-secret-8d1f",
    "SLACK_SIGNING_SECRET": "signing-secret-8d1f",
}


@pytest.fixture
async def bot(slack, tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("SOME_OTHER_SECRET", "inherited-secret-8d1f")
    async with running_bot(
        slack,
        tmp_path,
        JOB_CONFIG_PATH=JOBS,
        WORKSPACE_DIR=tmp_path / "workspace",
        **SECRETS,
    ) as running:
        yield running


async def ask(slack, user: str, text: str, channel: str = "general") -> str:
    asked = await slack.post(user, channel, f"<@U0BOT> {text}")
    reply = await slack.wait_for_reply(f"C0{channel.upper()}", asked.ts)
    return reply.text


async def test_a_guest_sees_restricted_jobs_by_type_and_cannot_remove_them(bot):
    slack = bot.slack
    asked = await slack.post(
        "alice", "general", "<@U0BOT> secret deploy env=prod-db-password=hunter2"
    )
    await slack.wait_for(
        lambda: "white_check_mark" in slack.reactions("C0GENERAL", asked.ts) or None
    )
    [job] = await bot.engine.store.list_jobs()
    assert "hunter2" in await ask(slack, "alice", "status")
    seen = await ask(slack, "guest", "status")
    assert "hunter2" not in seen and f"[{job.id}] secret_deploy_to waiting" in seen
    refused = await ask(slack, "guest", f"remove job id {job.id}")
    assert "only for members of the team" in refused
    assert await bot.engine.store.list_jobs() == [job]
    removed = await ask(slack, "alice", f"remove job id {job.id}")
    assert removed.startswith(f"Removed job {job.id}")


async def test_a_slackbot_reminder_runs_no_restricted_command(bot):
    slack = bot.slack
    ts = f"{time.time():.6f}"
    await slack.send_event(
        {
            "type": "app_mention",
            "user": "USLACKBOT",
            "text": "Reminder: <@U0BOT> secret deploy prod.",
            "ts": ts,
            "channel": "C0GENERAL",
            "event_ts": ts,
        }
    )
    reply = await slack.wait_for_reply("C0GENERAL", ts)
    assert "only for members of the team" in reply.text
    assert await bot.engine.store.list_jobs() == []


async def test_a_support_request_in_a_group_dm_gets_the_dm_answer(bot):
    slack = bot.slack
    group = await slack.create_channel(
        "mpdm-alice--bob--bennettbot-1",
        private=True,
        members=("alice", "bob", "bennettbot"),
    )
    ts = f"{time.time():.6f}"
    await slack.send_event(
        {
            "type": "message",
            "user": "U0ALICE",
            "text": "is tech-support around?",
            "ts": ts,
            "channel": group.id,
            "event_ts": ts,
            "channel_type": "mpim",
        }
    )
    reply = await slack.wait_for_reply(group.id, ts)
    assert "can't call tech-support from this conversation" in reply.text
    assert slack.messages("C0TECHSUP") == []


async def test_a_job_gets_no_secret_in_its_environment(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test env")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="succeeded")
    [run] = await bot.engine.store.runs()
    logged = (bot.tmp / "logs" / run.log_dir / "stdout").read_text()
    names = {line.partition("=")[0] for line in logged.splitlines()}
    assert {"PATH", "HOME", "EBMBOT_CALLBACK_URL", "PYTHONPATH"} <= names
    for secret in [*SECRETS.values(), "inherited-secret-8d1f", slack.bot_token]:
        assert secret not in logged
    assert slack.app_token not in logged


async def test_showlogs_is_built_in_with_the_old_words_and_the_host_path(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test env")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="succeeded")
    [run] = await bot.engine.store.runs()
    by_id = await ask(slack, "alice", f"showlogs tail output {run.id}")
    assert f"The last lines of `{run.log_dir}/stdout`" in by_id and "PATH=" in by_id
    printed = f"/srv/bot/logs/{run.log_dir}"  # as failure reports print it
    by_path = await ask(slack, "bob", f"showlogs head stdout {printed}")
    assert f"The first lines of `{run.log_dir}/stdout`" in by_path
    empty = await ask(slack, "alice", f"showlogs tail error {run.log_dir}")
    assert empty == f"`{run.log_dir}/stderr` is empty."
    typo = await ask(slack, "alice", f"showlogs tial stdout {run.log_dir}")
    assert typo.startswith("Usage: `@bennettbot showlogs head|tail|all")
    refused = await ask(slack, "guest", f"showlogs tail stdout {run.id}")
    assert "only for members of the team" in refused
    # `all` uploads the log as a file in the thread
    whole = await slack.post(
        "alice", "general", f"<@U0BOT> showlogs all stdout {run.id}"
    )
    await slack.wait_for(lambda: slack.calls_to("files.completeUploadExternal") or None)
    assert len(await bot.engine.store.runs()) == 1  # none of it ran a job
    assert slack.messages("C0TECHSUP") == []
    assert whole.ts
