"""The Slack notifier against the emulator: text too long for a message goes
up as a file, echoed output cannot ping, ``post`` says whether it posted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bennettbot import messages
from bennettbot.emulator import Message, SlackEmulator
from bennettbot.models import QueuedJob, Requester
from bennettbot.notifier import LogNotifier, Notice, RecordingNotifier, Report
from bennettbot.slack.notifier import (
    MAX_MESSAGE_CHARS,
    Attachment,
    SlackNotifier,
    add_retries,
    fits_in_message,
    send,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return add_retries(AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))


@pytest.fixture
def notifier(client: AsyncWebClient) -> SlackNotifier:
    return SlackNotifier(client, "logs", "tech-support")


@pytest.fixture
async def asked(slack: SlackEmulator) -> Message:
    """The message that asked for the job: reports go in its thread."""
    return await slack.post("alice", "general", "<@U0BOT> test something")


def job_for(asked: Message, job_type: str = "test_big") -> QueuedJob:
    return QueuedJob(
        1, job_type, {}, Requester("U0ALICE", asked.channel, asked.ts), START
    )


def only_reply(slack: SlackEmulator, asked: Message) -> Message:
    [reply] = slack.replies(asked.channel, asked.ts)
    return reply


def file_text(slack: SlackEmulator, message: Message) -> str:
    [file_id] = message.files
    content = slack.file_content(file_id)
    assert content is not None
    return content.decode()


def test_the_limit_is_slacks():
    assert MAX_MESSAGE_CHARS == 40_000
    assert fits_in_message("x" * 40_000)
    assert not fits_in_message("x" * 40_001)


async def test_send_posts_text_that_fits_and_uploads_text_that_does_not(
    slack, client, asked
):
    instead = Attachment("reply.txt", "unused", "unused")
    sent = await send(
        client, "C0GENERAL", "y" * 40_000, thread_ts=asked.ts, instead=instead
    )
    assert slack.message("C0GENERAL", sent.ts).text == "y" * 40_000
    long = "z" * 40_001
    sent = await send(
        client,
        "C0GENERAL",
        long,
        thread_ts=asked.ts,
        instead=Attachment("reply.txt", long, "Too long, so attached."),
    )
    assert sent.channel == "C0GENERAL" and sent.permalink.startswith("https://")
    first, second = slack.replies("C0GENERAL", asked.ts)
    assert not first.files
    assert second.text == "Too long, so attached." and file_text(slack, second) == long
    assert not slack.calls_to("files.upload")  # the retired method


async def test_blocks_whose_json_is_too_long_go_up_as_a_file(slack, client, asked):
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "b" * 2_500}}
        for _ in range(20)
    ]
    assert len(json.dumps(blocks)) > MAX_MESSAGE_CHARS
    await send(
        client,
        "C0GENERAL",
        "Output",
        thread_ts=asked.ts,
        blocks=blocks,
        instead=Attachment("out.json", json.dumps(blocks), "Attached."),
    )
    reply = only_reply(slack, asked)
    assert reply.blocks is None and json.loads(file_text(slack, reply)) == blocks


async def test_a_long_text_report_is_a_file_in_the_thread(slack, notifier, asked):
    output = "<!channel> " + "x" * 49_989
    await notifier.report(job_for(asked), Report("text", output))
    reply = only_reply(slack, asked)
    assert reply.text == (
        "The output of `test_big` is 50,000 characters long, so it is attached "
        "as a file."
    )
    assert file_text(slack, reply) == output  # as the job wrote it
    [upload] = slack.calls_to("files.getUploadURLExternal")
    assert upload.params["filename"] == "test_big.txt"
    assert not slack.calls_to("chat.postMessage")


async def test_text_too_long_only_once_made_inert_is_a_file_too(slack, notifier, asked):
    output = "<!here>" * 10 + "x" * (MAX_MESSAGE_CHARS - 70)
    assert len(output) == MAX_MESSAGE_CHARS  # fits, but not with its escapes
    await notifier.report(job_for(asked), Report("text", output))
    assert file_text(slack, only_reply(slack, asked)) == output


async def test_short_reports_are_messages_that_cannot_ping(slack, notifier, asked):
    await notifier.report(job_for(asked), Report("text", "hi <!channel>\n"))
    await notifier.report(job_for(asked), Report("code", "<@U0BOB>\n"))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*<!here>*"}}]
    await notifier.report(job_for(asked), Report("blocks", json.dumps(blocks)))
    text, code, block = slack.replies("C0GENERAL", asked.ts)
    assert text.text == "hi &lt;!channel&gt;\n"
    assert code.text == "```\n&lt;@U0BOB&gt;\n```"
    assert block.text == "Output of `test_big`"
    assert block.blocks == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*&lt;!here&gt;*"}}
    ]
    assert not any(m.mentions() for m in (text, code, block))


async def test_a_long_blocks_report_is_a_json_file(slack, notifier, asked):
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "b" * 2_500}}
        for _ in range(20)
    ]
    content = json.dumps(blocks)
    await notifier.report(job_for(asked, "test_blocks"), Report("blocks", content))
    reply = only_reply(slack, asked)
    assert reply.text == messages.output_attached("test_blocks", len(content))
    assert file_text(slack, reply) == content
    [upload] = slack.calls_to("files.getUploadURLExternal")
    assert upload.params["filename"] == "test_blocks.json"


async def test_a_file_report_names_its_job(slack, notifier, asked):
    await notifier.report(
        job_for(asked, "test_file"), Report("file", "<!channel>\n", "out.csv")
    )
    reply = only_reply(slack, asked)
    assert reply.text == "Output of `test_file`"
    assert file_text(slack, reply) == "<!channel>\n"  # a file needs no escaping
    [file] = slack.workspace.files.values()
    assert (file.name, file.title) == ("out.csv", "Output of test_file")


async def test_a_long_failure_is_a_file_and_is_reposted_by_its_permalink(
    slack, notifier, asked
):
    text = "Command `test_big` failed.\n" + "e" * 41_000
    await notifier.report_failure(job_for(asked), text)
    reply = only_reply(slack, asked)
    assert file_text(slack, reply) == text
    [repost] = slack.messages("C0TECHSUP")
    [file] = slack.workspace.files.values()
    assert repost.text == messages.failure_repost(
        "test_big", slack.workspace.file_payload(file)["permalink"]
    )


async def test_a_long_logs_notice_goes_to_the_logs_channel_as_a_file(slack, notifier):
    await notifier.notify_logs("L" * 45_000)
    [notice] = slack.messages("C0LOGS")
    assert notice.text == messages.message_attached(45_000)
    assert file_text(slack, notice) == "L" * 45_000


async def test_post_says_whether_slack_took_it(slack, notifier, asked):
    assert await notifier.post("general", "in the thread", asked.ts) is True
    assert only_reply(slack, asked).text == "in the thread"
    assert await notifier.post("C0GENERAL", "at the top") is True
    assert slack.messages("C0GENERAL")[-1].text == "at the top"
    assert await notifier.post("general", "w" * 40_001) is True  # as a file
    assert slack.messages("C0GENERAL")[-1].files
    with structlog.testing.capture_logs() as logs:
        assert await notifier.post("no-such-channel", "lost") is False
    [failed] = [e for e in logs if e["event"] == "post_failed"]
    assert failed["error"] == "channel_not_found"


async def test_the_other_notifiers_post_too():
    recording = RecordingNotifier()
    assert await recording.post("#general", "hello", "1.2") is True
    assert recording.of_kind("post") == [
        Notice("post", "hello", channel="#general", thread_ts="1.2")
    ]
    with structlog.testing.capture_logs() as logs:
        assert await LogNotifier().post("#general", "hello") is True
    assert logs[0]["event"] == "post" and logs[0]["text"] == "hello"
