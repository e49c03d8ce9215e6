"""The conversation: command text → reply, as both Slack and the demo see it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bennettbot.jobconfig import load_job_config, parse_job_config
from bennettbot.jobqueue import JobQueue
from bennettbot.models import FakeClock
from bennettbot.responder import Reply, Responder
from bennettbot.settings import SHIPPED_JOB_CONFIG
from conftest import ALICE

CONFIG = load_job_config(SHIPPED_JOB_CONFIG)


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))


@pytest.fixture
def responder(store, clock):
    queue = JobQueue(store, CONFIG, clock)
    return Responder(CONFIG, queue, store, clock, "bennettbot")


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
    assert "`@bennettbot showlogs head|tail|all stdout|stderr RUN`" in general
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


# -- guests and restricted namespaces ----------------------------------------

RESTRICTED = parse_job_config(
    {
        "op": {
            "restricted": True,
            "default_channel": "#ops",
            "jobs": {"deploy": {"run_args_template": "deploy {env}"}},
            "slack": [
                {
                    "command": "deploy [env]",
                    "action": "schedule_job",
                    "job_type": "deploy",
                }
            ],
        },
        "techsupport": {"restricted": True},
        "test": {
            "jobs": {"hello": {"run_args_template": "echo {name}"}},
            "slack": [
                {
                    "command": "hello [name]",
                    "action": "schedule_job",
                    "job_type": "hello",
                }
            ],
        },
    },
    SHIPPED_JOB_CONFIG,
)


@pytest.fixture
def guarded(store, clock):
    queue = JobQueue(store, RESTRICTED, clock)
    return Responder(RESTRICTED, queue, store, clock, "bennettbot")


async def test_a_guest_sees_restricted_jobs_by_type_only(guarded):
    await guarded.respond("op deploy prod-db-password=hunter2", ALICE)
    await guarded.respond("test hello Ann", ALICE)
    member = (await guarded.respond("status", ALICE, is_guest=False)).text
    assert "op_deploy (env=prod-db-password=hunter2)" in member
    guest = (await guarded.respond("status", ALICE, is_guest=True)).text
    assert "hunter2" not in guest and "] op_deploy waiting" in guest
    assert "test_hello (name=Ann)" in guest  # open namespaces as they are


async def test_a_guest_cannot_remove_a_restricted_job(guarded, store):
    await guarded.respond("op deploy prod", ALICE)
    [job] = await store.list_jobs()
    reply = await guarded.respond(f"remove job id {job.id}", ALICE, is_guest=True)
    assert "only for members of the team" in reply.text
    assert await store.list_jobs() == [job]
    reply = await guarded.respond(f"remove job id {job.id}", ALICE, is_guest=False)
    assert reply.text == f"Removed job {job.id} (`op_deploy`) from the queue."


async def test_built_in_commands_follow_their_namespaces_restriction(guarded, store):
    for text in (
        "techsupport ooo on from 2026-12-04 to 2026-12-05",
        "techsupport ooo off",
        "techsupport ooo status",
    ):
        reply = await guarded.respond(text, ALICE, is_guest=True)
        assert "`techsupport` commands are only for members" in reply.text
    assert await store.out_of_office() is None
    reply = await guarded.respond(
        "techsupport ooo on from 2026-12-04 to 2026-12-05", ALICE, is_guest=False
    )
    assert "out of office from 2026-12-04" in reply.text


async def test_remove_job_id_with_20_digits_gets_a_clean_answer(responder):
    reply = await responder.respond("remove job id 12345678901234567890", ALICE)
    assert reply.text == "There is no job with id 12345678901234567890."


async def test_suppression_times_may_be_written_without_a_colon(store, clock):
    config = parse_job_config(
        {
            "op": {
                "default_channel": "#ops",
                "jobs": {"deploy": {"run_args_template": "true"}},
                "slack": [
                    {
                        "command": "deploy suppress from [a] to [b]",
                        "action": "schedule_suppression",
                        "job_type": "deploy",
                    }
                ],
            }
        },
        SHIPPED_JOB_CONFIG,
    )
    queue = JobQueue(store, config, clock)
    responder = Responder(config, queue, store, clock)
    reply = await responder.respond("op deploy suppress from 0930 to 1015", ALICE)
    assert reply.text == (
        "`op_deploy` jobs are suppressed from 2026-12-03 09:30:00 UTC to "
        "2026-12-03 10:15:00 UTC."
    )
