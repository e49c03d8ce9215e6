"""Slack text → commands (SPEC §4 "Commands") and the support keyword (§5)."""

from __future__ import annotations

from datetime import date

import pytest

from bennettbot.commands import (
    BadDates,
    Help,
    OutOfOfficeOff,
    OutOfOfficeOn,
    OutOfOfficeStatus,
    RemoveJob,
    Run,
    Status,
    Unknown,
    addressed_text,
    clean,
    is_support_request,
    parse,
)
from bennettbot.jobconfig import load_job_config
from bennettbot.settings import SHIPPED_JOB_CONFIG

BOT = "U0BOT"
CONFIG = load_job_config(SHIPPED_JOB_CONFIG)


def command_text(text: str, *, is_im: bool = False) -> str | None:
    addressed = addressed_text(text, BOT, is_im=is_im)
    return None if addressed is None else clean(addressed)


@pytest.mark.parametrize(
    ("text", "is_im", "expected"),
    [
        ("<@U0BOT> test hello Bob", False, "test hello Bob"),
        ("<@U0BOT|bennettbot> test hello Bob", False, "test hello Bob"),
        ("Reminder: <@U0BOT> op deploy.", False, "op deploy"),
        ("<@U0BOT>   test    hello   Bob  ", False, "test hello Bob"),
        ("<@U0BOT> status..", False, "status."),  # only one trailing dot goes
        ("hey <@U0OTHER> test hello", False, None),  # not addressed to the bot
        ("test hello", False, None),
        ("test hello Bob", True, "test hello Bob"),  # a DM: the whole text
        ("<@U0BOT> status", True, "status"),  # a DM that mentions the bot
        ("<@U0BOT> test hello a &amp; b &lt;c&gt;", False, "test hello a & b <c>"),
        ("<@U0BOT> test hello &amp;lt;", False, "test hello &lt;"),  # undone once
        (
            "<@U0BOT> test hello <https://example.org/x?a=1&amp;b=2|example.org>",
            False,
            "test hello https://example.org/x?a=1&b=2",
        ),
        (
            "<@U0BOT> test hello <mailto:a@b.org|a@b.org>",
            False,
            "test hello mailto:a@b.org",
        ),
        ("<@U0BOT> test hello\nBob", False, "test hello Bob"),
    ],
)
def test_the_command_text_of_a_message(text, is_im, expected):
    assert command_text(text, is_im=is_im) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", Status()),
        ("STATUS", Status()),
        ("remove job id 12", RemoveJob(12)),
        ("help", Help()),
        ("test help", Help("test")),
        ("help test", Help("test")),
        ("help nosuch", Help(None, known=False)),
        ("nosuch help", Help(None, known=False)),
        ("techsupport ooo off", OutOfOfficeOff()),
        ("techsupport ooo status", OutOfOfficeStatus()),
        (
            "techsupport ooo on from 2026-12-01 to 2026-12-05",
            OutOfOfficeOn(date(2026, 12, 1), date(2026, 12, 5)),
        ),
        ("techsupport ooo on from 2026-02-30 to 2026-03-05", BadDates()),
        ("techsupport ooo on tomorrow", BadDates()),
        ("status please", Unknown("status please")),
        ("remove job id x", Unknown("remove job id x")),
        ("test hello Bob and more", None),  # a [param] takes the rest
        ("test read poem now", Unknown("test read poem now")),  # text after a command
        ("nonsense", Unknown("nonsense")),
    ],
)
def test_parse(text, expected):
    parsed = parse(text, CONFIG)
    if expected is None:
        assert isinstance(parsed, Run)
    else:
        assert parsed == expected


def test_a_configured_command_carries_its_arguments():
    parsed = parse("test hello Bob", CONFIG)
    assert isinstance(parsed, Run)
    assert parsed.match.namespace.name == "test"
    assert parsed.match.command.job_type == "hello_name"
    assert parsed.match.args == {"name": "Bob"}
    assert isinstance(parse("test hello", CONFIG), Run)
    assert parse("test hello", CONFIG).match.command.job_type == "hello"


@pytest.mark.parametrize(
    "text",
    [
        "tech-support",
        "Tech-Support please",
        "can someone from TECH-SUPPORT look?",
        "(tech-support)",
        "tech-support.",
        "calling tech-support, again",
        "<@U0BOT> tech-support help",
        "ping\ntech-support",
    ],
)
def test_texts_that_call_tech_support(text):
    assert is_support_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "techsupport",
        "tech support",
        "tech-supporter",
        "not-tech-support",
        "tech-support-team",
        "https://example.org/tech-support",
        "see /tech-support for details",
        "tech_support",
        "",
    ],
)
def test_texts_that_do_not_call_tech_support(text):
    assert not is_support_request(text)
