"""Confirmations end to end through the emulator, with the real bolt client:
Run, Cancel, expiry, a guest's press, a double press, a restart between the
question and the press; schedules don't ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_rig import running_bot

JOBS = Path(__file__).parent / "fixtures" / "operating_jobs.toml"


@pytest.fixture
def e2e_jobs() -> Path:
    return JOBS  # for the `bot` fixture


async def question(slack, user: str, text: str):
    """Ask for a job that needs confirming; the question and the mention."""
    asked = await slack.post(user, "general", f"<@U0BOT> {text}")
    found = await slack.wait_for_reply("C0GENERAL", asked.ts, contains="press Run")
    return found, asked


def buttons(message) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks or []
        for element in block.get("elements", [])
    ]


async def edited(slack, message, contains: str):
    return await slack.wait_for(
        lambda: message if contains in message.text else None, timeout=10
    )


async def test_run_queues_the_job_and_says_who_confirmed(bot):
    slack = bot.slack
    asked_q, asked = await question(slack, "alice", "ops careful now")
    assert asked_q.text.startswith("Run `ops_careful` (word=now)?")
    assert buttons(asked_q) == ["confirm_run", "confirm_cancel"]
    assert await bot.engine.store.list_jobs() == []  # not queued yet

    envelope = await slack.press("bob", "general", asked_q.ts, "confirm_run")
    ack = await slack.wait_for_ack(envelope.envelope_id)
    assert ack.received_at - envelope.sent_at < 3  # well within Slack's limit
    await edited(slack, asked_q, "confirmed by <@U0BOB>")
    assert buttons(asked_q) == []
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts, contains="careful now")
    assert reply.text == "careful now\n"


async def test_cancel_queues_nothing_and_says_who_cancelled(bot):
    slack = bot.slack
    asked_q, _ = await question(slack, "alice", "ops careful later")
    await slack.press("alice", "general", asked_q.ts, "confirm_cancel")
    await edited(slack, asked_q, "cancelled by <@U0ALICE>")
    assert buttons(asked_q) == []
    assert await bot.engine.store.list_jobs() == []
    assert await bot.engine.store.runs() == []


async def test_a_second_press_does_nothing_harmful(bot):
    slack = bot.slack
    asked_q, asked = await question(slack, "alice", "ops careful twice")
    first = await slack.press("alice", "general", asked_q.ts, "confirm_run")
    second = await slack.press("bob", "general", asked_q.ts, "confirm_run")
    await slack.wait_for_ack(first.envelope_id)
    await slack.wait_for_ack(second.envelope_id)
    await edited(slack, asked_q, "confirmed by <@U0")
    winner = "U0ALICE" if "<@U0ALICE>" in asked_q.text else "U0BOB"
    note = await slack.wait_for(lambda: slack.ephemerals or None, timeout=10)
    assert len(note) == 1 and note[0].user != winner  # whichever came second
    assert note[0].text == f"That was confirmed already by <@{winner}>."
    await slack.wait_for_reply("C0GENERAL", asked.ts, contains="careful twice")
    assert len(slack.calls_to("chat.update")) == 1
    assert [run.type for run in await bot.engine.store.runs()] == ["ops_careful"]
    assert await bot.engine.store.list_jobs() == []  # one job, run once


async def test_a_guest_cannot_confirm_a_restricted_job(bot):
    slack = bot.slack
    asked_q, _ = await question(slack, "alice", "secret careful")
    await slack.press("guest", "general", asked_q.ts, "confirm_run")
    note = await slack.wait_for(lambda: slack.ephemerals or None, timeout=10)
    assert note[0].user == "U0GUEST"
    assert "only for members of the team" in note[0].text
    assert buttons(asked_q) == ["confirm_run", "confirm_cancel"]  # still open
    assert await bot.engine.store.list_jobs() == []
    await slack.press("alice", "general", asked_q.ts, "confirm_run")
    await edited(slack, asked_q, "confirmed by <@U0ALICE>")


async def test_after_ten_minutes_the_question_expires(bot):
    slack = bot.slack
    asked_q, _ = await question(slack, "alice", "ops careful soon")
    await slack.wait_for(lambda: slack.calls_to("chat.postMessage") or None)
    bot.clock.advance(601)
    bot.engine.confirmations.wake()
    await edited(slack, asked_q, "nobody confirmed it within 10 minutes")
    assert buttons(asked_q) == []
    assert await bot.engine.store.list_jobs() == []


async def test_a_press_after_expiry_is_refused(bot):
    slack = bot.slack
    asked_q, _ = await question(slack, "alice", "ops careful late")
    bot.clock.advance(601)  # the expiry sweep has not run yet
    await slack.press("alice", "general", asked_q.ts, "confirm_run")
    note = await slack.wait_for(lambda: slack.ephemerals or None, timeout=10)
    assert note[0].text.startswith("Too late: that question has expired.")
    await edited(slack, asked_q, "nobody confirmed it within 10 minutes")
    assert await bot.engine.store.list_jobs() == []


async def test_a_restart_between_question_and_press_loses_nothing(
    slack, tmp_path, clean_env
):
    settings = {"JOB_CONFIG_PATH": JOBS, "WORKSPACE_DIR": tmp_path / "workspace"}
    async with running_bot(slack, tmp_path, **settings) as bot:
        asked_q, asked = await question(slack, "alice", "ops careful again")
        assert await bot.engine.store.list_jobs() == []
    async with running_bot(slack, tmp_path, **settings) as bot:
        await slack.press("bob", "general", asked_q.ts, "confirm_run")
        await edited(slack, asked_q, "confirmed by <@U0BOB>")
        reply = await slack.wait_for_reply(
            "C0GENERAL", asked.ts, contains="careful again"
        )
        assert reply.text == "careful again\n"
