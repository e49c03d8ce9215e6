"""End to end: the real slack-bolt Socket Mode client against the emulator,
with the real dispatcher, store and subprocesses behind it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bennettbot.app import web_deps
from bennettbot.emulator import SlackEmulator
from bennettbot.signing import make_token
from bennettbot.web import build_web_app
from conftest import E2E_CALLBACK_SECRET as CALLBACK_SECRET
from conftest import E2E_GITHUB_SECRET as GITHUB_SECRET


async def reacted(slack: SlackEmulator, channel: str, ts: str, name: str) -> None:
    await slack.wait_for(lambda: name in slack.reactions(channel, ts) or None)


async def test_the_check_file_exists_once_connected_and_channels_are_joined(bot):
    assert (bot.tmp / "check").exists()
    joined = {c.params.get("channel") for c in bot.slack.calls_to("conversations.join")}
    assert {"C0TECH", "C0RANDOM"} <= joined


async def test_a_mention_runs_a_job_and_replies_in_its_thread(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test echo hello.")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts, contains="hello")
    assert reply.text == "hello\n"
    assert "white_check_mark" in slack.reactions("C0GENERAL", asked.ts)
    started = [m.text for m in slack.messages("C0LOGS")]
    assert "Command `test_echo` about to start" in started


async def test_a_reminder_mention_and_a_reply_inside_a_thread(bot):
    slack = bot.slack
    parent = await slack.post("alice", "general", "a thread")
    asked = await slack.post(
        "bob",
        "general",
        "Reminder: <@U0BOT|bennettbot> test echo hi.",
        thread_ts=parent.ts,
    )
    reply = await slack.wait_for_reply("C0GENERAL", parent.ts, contains="hi")
    assert reply.thread_ts == parent.ts
    assert asked.thread_ts == parent.ts


async def test_a_direct_message_is_a_command(bot):
    slack = bot.slack
    asked = await slack.dm("alice", "test echo dm")
    reply = await slack.wait_for_reply("D0ALICE", asked.ts, contains="dm")
    assert reply.text == "dm\n"


async def test_each_report_format(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test blocks")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert reply.blocks[0]["text"]["text"] == "*hi*"
    asked = await slack.post("alice", "general", "<@U0BOT> test code")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert reply.text == "```\nx = 1\n```"
    asked = await slack.post("alice", "general", "<@U0BOT> test file")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    [file_id] = reply.files
    assert slack.file_content(file_id) == b"file contents\n"
    assert not slack.calls_to("files.upload")  # the retired method
    asked = await slack.post("alice", "general", "<@U0BOT> test quiet")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert reply.text == "Command `test_quiet` succeeded"


async def test_a_failure_is_reported_and_reposted_to_tech_support(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test fail")
    failure = await slack.wait_for_reply("C0GENERAL", asked.ts, contains="failed")
    assert (
        "exit status 3" in failure.text and "/srv/bot/logs/test_fail/" in failure.text
    )
    assert "@bennettbot showlogs tail stderr test_fail/" in failure.text
    permalink = slack.permalink("C0GENERAL", failure.ts)
    await slack.wait_for(
        lambda: any(permalink in m.text for m in slack.messages("C0TECHSUP")) or None
    )


async def test_a_failure_asked_in_a_dm_is_not_reposted(bot):
    slack = bot.slack
    asked = await slack.dm("alice", "test fail")
    await slack.wait_for_reply("D0ALICE", asked.ts, contains="failed")
    before = len(slack.messages("C0TECHSUP"))
    # the next job's report proves the failure's handling is over
    done = await slack.dm("alice", "test quiet")
    await slack.wait_for_reply("D0ALICE", done.ts, contains="succeeded")
    assert len(slack.messages("C0TECHSUP")) == before


async def test_guests_cannot_run_restricted_commands(bot):
    slack = bot.slack
    asked = await slack.post("guest", "general", "<@U0BOT> secret quiet")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert "only for members of the team" in reply.text
    assert await bot.engine.store.list_jobs() == []
    asked = await slack.post("alice", "general", "<@U0BOT> secret quiet")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="succeeded")


async def test_already_running_status_and_remove(bot):
    slack = bot.slack
    first = await slack.post("alice", "general", "<@U0BOT> test wait")
    await slack.wait_for(lambda: slack.reactions("C0GENERAL", first.ts) or None)
    await slack.wait_for(
        lambda: any("test_wait" in m.text for m in slack.messages("C0LOGS")) or None
    )
    second = await slack.post("bob", "general", "<@U0BOT> test wait")
    reply = await slack.wait_for_reply("C0GENERAL", second.ts)
    assert "is already running" in reply.text and "remove job id" in reply.text
    status = await slack.post("alice", "general", "<@U0BOT> status")
    lines = (await slack.wait_for_reply("C0GENERAL", status.ts)).text.splitlines()
    assert "running since" in lines[0] and "waiting to start" in lines[1]
    waiting_id = lines[1].split("]")[0].strip("[")
    removed = await slack.post(
        "alice", "general", f"<@U0BOT> remove job id {waiting_id}"
    )
    reply = await slack.wait_for_reply("C0GENERAL", removed.ts)
    assert reply.text.startswith(f"Removed job {waiting_id}")
    (bot.tmp / "workspace-data" / "test" / "release").touch()
    await slack.wait_for_reply("C0GENERAL", first.ts, contains="succeeded")


async def test_help_and_apology(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> help")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert "`secret` (restricted to team members)" in reply.text
    asked = await slack.post("alice", "general", "<@U0BOT> frobnicate")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert reply.text.startswith("Sorry, I didn't understand that.")


async def test_a_support_request_is_reacted_to_and_reposted_once(bot):
    slack = bot.slack
    asked = await slack.post("bob", "general", "Can Tech-Support help with the VPN?")
    await slack.wait_for(
        lambda: "sos" in slack.reactions("C0GENERAL", asked.ts) or None
    )
    permalink = slack.permalink("C0GENERAL", asked.ts)
    await slack.wait_for(
        lambda: [m for m in slack.messages("C0TECHSUP") if permalink in m.text] or None
    )
    await slack.edit("bob", "general", asked.ts, "Can tech-support help? (edited)")
    # an ordinary command after the edit: once it is answered, the edit was handled
    probe = await slack.post("alice", "general", "<@U0BOT> status")
    await slack.wait_for_reply("C0GENERAL", probe.ts)
    reposts = [m for m in slack.messages("C0TECHSUP") if permalink in m.text]
    assert len(reposts) == 1


async def test_an_edit_that_adds_the_keyword_is_a_support_request(bot):
    slack = bot.slack
    asked = await slack.post("bob", "general", "the VPN is down")
    await slack.edit("bob", "general", asked.ts, "the VPN is down, tech-support")
    await slack.wait_for(
        lambda: "sos" in slack.reactions("C0GENERAL", asked.ts) or None
    )


async def test_a_mention_with_the_keyword_is_a_support_request_not_a_command(bot):
    slack = bot.slack
    asked = await slack.post("bob", "general", "<@U0BOT> tech-support status")
    await slack.wait_for(
        lambda: "sos" in slack.reactions("C0GENERAL", asked.ts) or None
    )
    probe = await slack.post("alice", "general", "<@U0BOT> status")
    await slack.wait_for_reply("C0GENERAL", probe.ts)
    assert slack.replies("C0GENERAL", asked.ts) == []


async def test_support_requests_while_out_of_office_get_a_reply(bot):
    slack = bot.slack
    asked = await slack.post(
        "alice", "general", "<@U0BOT> techsupport ooo on from 2026-01-01 to 2099-01-01"
    )
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="out of office")
    request = await slack.post("bob", "general", "help please tech-support")
    reply = await slack.wait_for_reply(
        "C0GENERAL", request.ts, contains="out of office"
    )
    assert "until 2099-01-01" in reply.text


async def test_tech_support_cannot_be_called_from_a_dm(bot):
    slack = bot.slack
    asked = await slack.dm("alice", "tech-support please")
    reply = await slack.wait_for_reply("D0ALICE", asked.ts)
    assert "can't call tech-support from this conversation" in reply.text


async def test_messages_in_the_tech_support_channel_and_from_bots_are_ignored(bot):
    slack = bot.slack
    inside = await slack.post("alice", "tech-support", "tech-support: is this on?")
    from_bot = await slack.post_as_bot("general", "tech-support alert")
    probe = await slack.post("alice", "general", "<@U0BOT> status")
    await slack.wait_for_reply("C0GENERAL", probe.ts)
    assert slack.reactions("C0TECHSUP", inside.ts) == {}
    assert slack.reactions("C0GENERAL", from_bot.ts) == {}


async def test_the_bot_joins_a_new_channel(bot):
    slack = bot.slack
    channel = await slack.create_channel("brand-new")
    await slack.wait_for(
        lambda: (
            any(
                c.params.get("channel") == channel.id
                for c in slack.calls_to("conversations.join")
            )
            or None
        )
    )


async def test_a_redelivered_event_is_handled_once(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> help")
    await slack.wait_for_reply("C0GENERAL", asked.ts)
    envelopes = slack.envelopes_for(asked)
    [mention] = [e for e in envelopes if e.event.get("type") == "app_mention"]
    again = await slack.redeliver(mention.envelope_id)
    await slack.wait_for_ack(again.envelope_id)
    probe = await slack.post("alice", "general", "<@U0BOT> status")
    await slack.wait_for_reply("C0GENERAL", probe.ts)
    assert len(slack.replies("C0GENERAL", asked.ts)) == 1


async def test_a_rate_limited_post_is_retried(bot):
    slack = bot.slack
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    asked = await slack.post("alice", "general", "<@U0BOT> help")
    await slack.wait_for_reply("C0GENERAL", asked.ts)
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert 429 in statuses


async def test_the_bot_reconnects_after_a_dropped_socket(bot):
    slack = bot.slack
    await slack.drop_socket()
    await slack.wait_for(lambda: len(slack.connections) >= 2 or None, 10)
    asked = await slack.post("alice", "general", "<@U0BOT> test echo back")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="back")


async def test_a_listener_error_gets_an_x_and_a_thread_reply(bot):
    slack = bot.slack
    slack.fail_next("users.info", status=200, error="fatal_error")
    # users.info is asked only for restricted commands
    asked = await slack.post("bob", "general", "<@U0BOT> secret quiet")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts)
    assert "something went wrong" in reply.text
    assert "x" in slack.reactions("C0GENERAL", asked.ts)
    # and it carries on
    again = await slack.post("bob", "general", "<@U0BOT> test quiet")
    await slack.wait_for_reply("C0GENERAL", again.ts, contains="succeeded")


async def test_a_report_that_cannot_be_posted_becomes_a_short_notice(bot):
    slack = bot.slack
    slack.fail_next("files.completeUploadExternal", status=200, error="not_allowed")
    asked = await slack.post("alice", "general", "<@U0BOT> test file")
    notice = await slack.wait_for_reply("C0GENERAL", asked.ts, contains="could not")
    assert notice.text == (
        "Command `test_file` finished, but I could not post its result (not_allowed)."
    )


async def test_a_server_error_is_retried(bot):
    slack = bot.slack
    slack.fail_next("chat.postMessage", status=503)
    asked = await slack.post("alice", "general", "<@U0BOT> help")
    await slack.wait_for_reply("C0GENERAL", asked.ts, timeout=10)
    assert 503 in [c.status for c in slack.calls_to("chat.postMessage")]


def test_channel_settings_may_be_names_or_ids():
    from bennettbot.slack.notifier import channel_ref

    assert channel_ref("logs") == "#logs"
    assert channel_ref("#logs") == "#logs"
    assert channel_ref("C0LOGS") == "C0LOGS"
    assert channel_ref("tech-support") == "#tech-support"


async def test_editing_a_mention_does_not_run_the_command_again(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test echo once")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="once")
    await slack.edit("alice", "general", asked.ts, "<@U0BOT> test echo once!")
    assert any(e.event.get("edited") for e in slack.envelopes_for(asked))
    probe = await slack.post("alice", "general", "<@U0BOT> test echo probe")
    await slack.wait_for_reply("C0GENERAL", probe.ts, contains="probe")
    assert len(slack.replies("C0GENERAL", asked.ts)) == 1
    assert len([r for r in await bot.engine.store.runs() if r.type == "test_echo"]) == 2


async def test_mentions_by_other_bots_are_not_commands(bot):
    slack = bot.slack
    asked = await slack.post_as_bot("general", "<@U0BOT> secret quiet")
    probe = await slack.post("alice", "general", "<@U0BOT> status")
    await slack.wait_for_reply("C0GENERAL", probe.ts)
    assert slack.replies("C0GENERAL", asked.ts) == []
    assert slack.reactions("C0GENERAL", asked.ts) == {}


async def test_jobs_asked_for_by_channel_name_report_and_repost(bot):
    # e.g. a webhook-triggered deploy, which reports to the namespace's
    # default_channel, given by name
    from bennettbot.models import Requester

    slack = bot.slack
    queue = bot.engine.queue
    await queue.schedule_job("test_file", {}, Requester(channel="#general"))
    await slack.wait_for(
        lambda: [m for m in slack.messages("C0GENERAL") if m.files] or None, 10
    )
    await queue.schedule_job("test_fail", {}, Requester(channel="#general"))
    failure = await slack.wait_for(
        lambda: [m for m in slack.messages("C0GENERAL") if "failed" in m.text] or None
    )
    permalink = slack.permalink("C0GENERAL", failure[0].ts)
    await slack.wait_for(
        lambda: any(permalink in m.text for m in slack.messages("C0TECHSUP")) or None
    )


async def test_retry_after_is_honoured(bot):
    slack = bot.slack
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    asked = await slack.post("alice", "general", "<@U0BOT> help")
    await slack.wait_for_reply("C0GENERAL", asked.ts, timeout=10)
    limited, retried = slack.calls_to("chat.postMessage")[-2:]
    assert limited.status == 429 and retried.status == 200
    assert retried.at - limited.at >= 1.0


async def test_unhandled_event_types_are_acked(bot):
    slack = bot.slack
    envelope = await slack.send_event(
        {"type": "reaction_added", "user": "U0ALICE", "reaction": "tada"}
    )
    await slack.wait_for_ack(envelope.envelope_id)


@pytest.fixture
async def web(bot):
    client = TestClient(TestServer(build_web_app(web_deps(bot.engine))))
    await client.start_server()
    yield client
    await client.close()


async def test_a_merged_pr_is_announced_then_deployed_after_a_minute(bot, web):
    slack = bot.slack
    payload = json.loads(
        (
            Path(__file__).parent / "fixtures/github/pull_request.closed.payload.json"
        ).read_text()
    )
    payload["pull_request"] |= {"merged": True, "merged_by": {"login": "octocat"}}
    body = json.dumps(payload).encode()
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await web.post(
        "/github/deployproj/",
        data=body,
        headers={
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "e2e-1",
        },
    )
    assert response.status == 200
    notice = await slack.wait_for(
        lambda: (
            [m for m in slack.messages("C0GENERAL") if "was merged by" in m.text]
            or None
        )
    )
    assert "PR #2" in notice[0].text and "octocat" in notice[0].text
    assert await bot.engine.store.runs() == []  # not before its minute is up
    bot.clock.advance(60)
    bot.engine.dispatcher.wake()
    await slack.wait_for(
        lambda: (
            [
                m
                for m in slack.messages("C0GENERAL")
                if m.text == "Command `deployproj_deploy` succeeded"
            ]
            or None
        ),
        10,
    )


async def test_a_job_callback_is_posted_in_its_thread(bot, web):
    slack = bot.slack
    parent = await slack.post("alice", "general", "a long job is running here")
    expires = int(bot.clock.now().timestamp()) + 60
    token = make_token(CALLBACK_SECRET, expires, "C0GENERAL", parent.ts)
    response = await web.post(
        "/callback/",
        params={"channel": "C0GENERAL", "thread_ts": parent.ts, "token": token},
        json={"message": "halfway there"},
    )
    assert response.status == 200
    reply = await slack.wait_for_reply("C0GENERAL", parent.ts, contains="halfway")
    assert reply.text == "halfway there"


async def test_concurrent_guest_questions_share_one_users_info_call(slack):
    from slack_sdk.web.async_client import AsyncWebClient

    from bennettbot.models import SystemClock
    from bennettbot.slack.listeners import People

    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    guests = People(client, SystemClock())
    answers = await asyncio.gather(*(guests.is_guest("U0GUEST") for _ in range(5)))
    assert answers == [True] * 5
    assert not await guests.is_guest("U0ALICE")
    assert len(slack.calls_to("users.info")) == 2
