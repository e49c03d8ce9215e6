"""End to end through the emulator: what the bot says in Slack is robust.
Output too long for a message arrives as a file; mentions that people type
as arguments, or that jobs print, do not ping anyone."""

from __future__ import annotations

from datetime import timedelta

from bennettbot import messages
from bennettbot.emulator import Message, SlackEmulator
from e2e_rig import Bot


def file_text(slack: SlackEmulator, message: Message) -> str:
    [file_id] = message.files
    content = slack.file_content(file_id)
    assert content is not None
    return content.decode()


async def suppress(bot: Bot, job_type: str) -> None:
    """Hold ``job_type`` jobs back, so they wait where ``status`` shows them."""
    now = bot.clock.now()
    await bot.engine.store.schedule_suppression(
        job_type, now - timedelta(minutes=1), now + timedelta(hours=1)
    )


async def release(bot: Bot, job_type: str) -> None:
    await bot.engine.store.cancel_suppressions(job_type)
    bot.engine.dispatcher.wake()


async def test_output_too_long_for_a_message_arrives_as_a_file(bot):
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> test big")
    reply = await slack.wait_for(
        lambda: [m for m in slack.replies("C0GENERAL", asked.ts) if m.files] or None,
        15,
    )
    [reply] = reply
    assert reply.thread_ts == asked.ts
    assert reply.text == (
        "The output of `test_big` is 50,000 characters long, so it is attached "
        "as a file."
    )
    assert file_text(slack, reply) == "x" * 50_000
    [upload] = slack.calls_to("files.getUploadURLExternal")
    assert upload.params["filename"] == "test_big.txt"
    assert len(slack.replies("C0GENERAL", asked.ts)) == 1  # no cut-off message


async def test_mentions_typed_as_arguments_ping_nobody(bot):
    slack = bot.slack
    await suppress(bot, "test_echo")
    asked = await slack.post(
        "alice", "general", "<@U0BOT> test echo hi <!channel> <@U0BOB> <!here|here>"
    )
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="suppressed")
    status = await slack.post("alice", "general", "<@U0BOT> status")
    reply = await slack.wait_for_reply("C0GENERAL", status.ts)
    job, suppression = reply.text.splitlines()
    inert = "hi &lt;!channel&gt; &lt;@U0BOB&gt; &lt;!here|here&gt;"
    assert f"test_echo (word={inert}) waiting to start" in job
    assert "suppressed (active)" in suppression
    await release(bot, "test_echo")
    echoed = await slack.wait_for_reply("C0GENERAL", asked.ts, contains="hi &lt;")
    assert echoed.text == f"{inert}\n"
    said = [m.text for m in slack.messages("C0GENERAL") if m.bot_id]
    assert not any("<!" in text or "<@" in text for text in said)


async def test_a_reply_too_long_for_a_message_arrives_as_a_file(bot):
    slack = bot.slack
    await suppress(bot, "test_echo")
    word = "<>" * 6_000  # escaped for status: 48,000 characters
    asked = await slack.post("alice", "general", f"<@U0BOT> test echo {word}")
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="suppressed")
    status = await slack.post("alice", "general", "<@U0BOT> status")
    reply = await slack.wait_for_reply("C0GENERAL", status.ts)
    status_text = file_text(slack, reply)
    assert reply.text == messages.message_attached(len(status_text))
    assert len(status_text) > 48_000
    assert f"(word={messages.escape(word)})" in status_text
