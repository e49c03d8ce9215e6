"""The conversation: command text → reply, as both Slack and the demo see it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bennettbot.jobconfig import load_job_config
from bennettbot.models import FakeClock
from bennettbot.responder import Reply, Responder
from bennettbot.scheduler import Scheduler
from bennettbot.settings import SHIPPED_JOB_CONFIG
from conftest import ALICE

CONFIG = load_job_config(SHIPPED_JOB_CONFIG)


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))


@pytest.fixture
def responder(store, clock):
    scheduler = Scheduler(store, CONFIG, clock, bot_name="bennettbot")
    return Responder(CONFIG, scheduler, store, clock, "bennettbot")


async def test_a_job_command_is_accepted_and_queued(responder, store):
    assert await responder.respond("test hello Bob", ALICE) == Reply("", True)
    [job] = await store.list_jobs()
    assert (job.type, job.args, job.requester) == (
        "test_hello_name",
        {"name": "Bob"},
        ALICE,
    )


async def test_guests_cannot_run_restricted_commands(responder, store):
    reply = await responder.respond("showlogs tail stdout x/y", ALICE, is_guest=True)
    assert not reply.accepted
    assert "only for members of the team" in reply.text
    assert await store.list_jobs() == []
    # unrestricted namespaces are open to guests
    assert (await responder.respond("test hello", ALICE, is_guest=True)).accepted


async def test_help_variants(responder):
    general = (await responder.respond("help", ALICE)).text
    assert "`showlogs` (restricted to team members)" in general
    assert "`@bennettbot status`" in general
    for text in ("test help", "help test"):
        reply = (await responder.respond(text, ALICE)).text
        assert "`@bennettbot test hello [name]`: say hello to [name]" in reply


async def test_techsupport_help_lists_the_rota_and_the_out_of_office_commands(
    responder,
):
    reply = (await responder.respond("techsupport help", ALICE)).text
    assert reply.splitlines()[1:] == [
        "• `@bennettbot techsupport rota report`: say who is on tech-support this "
        "week and next",
        "• `@bennettbot techsupport ooo on from [start] to [end]`: tech-support is "
        "out of office from [start] to [end] (YYYY-MM-DD)",
        "• `@bennettbot techsupport ooo off`: tech-support is back",
        "• `@bennettbot techsupport ooo status`: say whether tech-support is out of "
        "office",
    ]


async def test_anything_else_gets_an_apology_and_the_help(responder):
    reply = await responder.respond("make me a sandwich", ALICE)
    assert reply.text.startswith("Sorry, I didn't understand that.\n")
    assert "I know these namespaces:" in reply.text


async def test_status_and_remove(responder, store):
    assert (await responder.respond("status", ALICE)).text == "Nothing is happening"
    await responder.respond("test hello Bob", ALICE)
    [job] = await store.list_jobs()
    assert (
        f"[{job.id}] test_hello_name" in (await responder.respond("status", ALICE)).text
    )
    reply = await responder.respond(f"remove job id {job.id}", ALICE)
    assert reply.text == f"Removed job {job.id} (`test_hello_name`) from the queue."


async def test_out_of_office_on_status_off(responder, clock):
    on = await responder.respond(
        "techsupport ooo on from 2026-12-01 to 2026-12-05", ALICE
    )
    assert on.text == "Tech-support is out of office from 2026-12-01 until 2026-12-05."
    status = await responder.respond("techsupport ooo status", ALICE)
    assert status.text == "Tech-support is out of office until 2026-12-05."
    clock.advance(3 * 86400)  # 2026-12-06: the period is over
    status = await responder.respond("techsupport ooo status", ALICE)
    assert status.text == "Tech-support is in the office."
    await responder.respond("techsupport ooo on from 2026-12-20 to 2026-12-31", ALICE)
    status = await responder.respond("techsupport ooo status", ALICE)
    assert status.text == (
        "Tech-support will be out of office from 2026-12-20 until 2026-12-31."
    )
    off = await responder.respond("techsupport ooo off", ALICE)
    assert off.text == "Tech-support is back in the office."
    status = await responder.respond("techsupport ooo status", ALICE)
    assert status.text == "Tech-support is in the office."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("techsupport ooo on from 2026-12-05 to 2026-12-01", "must start on or before"),
        ("techsupport ooo on from 2026-11-01 to 2026-11-02", "must not be over"),
        ("techsupport ooo on from 2026-13-01 to 2026-12-02", "YYYY-MM-DD"),
        ("techsupport ooo on next week", "YYYY-MM-DD"),
    ],
)
async def test_bad_out_of_office_dates(responder, store, text, expected):
    assert expected in (await responder.respond(text, ALICE)).text
    assert await store.out_of_office() is None


async def test_help_for_an_unknown_namespace_apologises(responder):
    reply = await responder.respond("help nosuch", ALICE)
    assert reply.text.startswith("Sorry, I didn't understand that.")


async def test_the_guest_question_is_asked_only_for_restricted_commands(responder):
    asked = []

    async def is_guest() -> bool:
        asked.append(1)
        return True

    assert (await responder.respond("test hello", ALICE, is_guest=is_guest)).accepted
    assert asked == []
    reply = await responder.respond(
        "showlogs tail stdout a/b", ALICE, is_guest=is_guest
    )
    assert "only for members" in reply.text and asked == [1]
