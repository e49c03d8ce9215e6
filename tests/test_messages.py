"""What the bot says: mentions made inert in echoed text, escaped GitHub text."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bennettbot import messages
from bennettbot.messages import no_pings
from conftest import job_config


@pytest.mark.parametrize(
    ("markup", "inert"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here>", "&lt;!here&gt;"),
        ("<!everyone>", "&lt;!everyone&gt;"),
        ("<!here|here>", "&lt;!here|here&gt;"),
        ("<!channel|@channel>", "&lt;!channel|@channel&gt;"),
        ("<!group>", "&lt;!group&gt;"),
        ("<!subteam^S0123ABC>", "&lt;!subteam^S0123ABC&gt;"),
        ("<!subteam^S0123ABC|@devs>", "&lt;!subteam^S0123ABC|@devs&gt;"),
        ("<@U0123ABC>", "&lt;@U0123ABC&gt;"),
        ("<@W0123ABC|alice>", "&lt;@W0123ABC|alice&gt;"),
    ],
)
def test_mentions_are_shown_literally(markup, inert):
    assert no_pings(markup) == inert
    assert no_pings(f"hey {markup}, look\n{markup}") == f"hey {inert}, look\n{inert}"


@pytest.mark.parametrize(
    "text",
    [
        "see <https://example.com/a?b=c|the report> now",
        "<https://example.com>",
        "<mailto:team@example.com|mail us>",
        "in <#C0123ABC> or <#C0123ABC|general>",
        "<!date^1392734382^{date_num}|2014-02-18>",
        "<!channelling> <!heresy>",  # not mentions
        "a < b > c, x <= y, a -> b",
        "already inert: &lt;!channel&gt; &lt;@U123&gt; &amp; &lt;",
        "*bold* _it_ `code` ```block```",
        "",
    ],
)
def test_other_markup_and_text_are_left_alone(text):
    assert no_pings(text) == text


def test_links_survive_next_to_mentions():
    text = "<!here> see <https://x.org/p|the PR> by <@U1> in <#C2>"
    assert no_pings(text) == (
        "&lt;!here&gt; see <https://x.org/p|the PR> by &lt;@U1&gt; in <#C2>"
    )


def test_a_mention_hidden_in_a_label_is_found_too():
    # one pass would leave <@U1|&lt;!here&gt;>: a live mention of U1
    assert no_pings("<@U1|<!here>>") == "&lt;@U1|&lt;!here&gt;&gt;"


def test_inert_text_is_not_broken_again():
    once = no_pings("<!channel> & <@U1>")
    assert once == "&lt;!channel&gt; & &lt;@U1&gt;"
    assert no_pings(once) == once


def shown(text: str) -> str:
    """What Slack shows for ``text``, as far as these escapes go."""
    return text.replace("&lt;", "<").replace("&gt;", ">")


def mentions(text: str) -> list[str]:
    """Every ``<…>`` span of ``text`` that Slack reads as a mention."""
    found = []
    for inner in re.findall(r"<([^<>]*)>", text):
        name = inner.split("|", 1)[0].lower()
        if (
            name in ("!channel", "!here", "!everyone", "!group")
            or name.startswith("!subteam^")
            or (name.startswith("@") and len(name) > 1)
        ):
            found.append(inner)
    return found


PIECES = ["<", ">", "!", "@", "|", "channel", "here", "Everyone", "subteam^S1"]
PIECES += ["U1", "W2", "https://x.org", "#C1", "&lt;", "&gt;", "&", " ", "x\n"]
MARKUP = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@given(MARKUP | st.text(max_size=40))
def test_no_pings_leaves_no_mention_and_shows_the_same_text(text):
    inert = no_pings(text)
    assert mentions(inert) == []
    assert shown(inert) == shown(text)
    assert no_pings(inert) == inert


def test_help_texts_cannot_ping():
    config = job_config(
        """
        [ns]
        description = "ask <!channel> or <@U0BOB>, see <https://x.org|docs>"
        [ns.jobs.go]
        run_args_template = "true"
        [[ns.slack]]
        command = "go"
        help = "tells <!here>"
        action = "schedule_job"
        job_type = "go"
        """
    )
    general = messages.general_help(config.namespaces, "bennettbot")
    assert "ask &lt;!channel&gt; or &lt;@U0BOB&gt;, see <https://x.org|docs>" in (
        general
    )
    assert "ask &lt;!channel&gt;" in messages.apology(config.namespaces, "")
    help_text = messages.namespace_help(config.namespaces["ns"], "bennettbot")
    assert "• `@bennettbot ns go`: tells &lt;!here&gt;" in help_text


def test_a_deploy_notice_shows_the_title_and_merger_literally():
    at = datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
    text = messages.deploy_scheduled(
        "proj", 7, "Fix <!channel> & <https://x|y>", "<@U1>", at
    )
    assert text == (
        "PR #7 “Fix &lt;!channel&gt; &amp; &lt;https://x|y&gt;” was merged by "
        "&lt;@U1&gt;: `proj_deploy` will start at 2026-01-05 09:01:00 UTC."
    )


def test_notes_for_text_that_goes_up_as_a_file():
    assert messages.output_attached("test_big", 50_000) == (
        "The output of `test_big` is 50,000 characters long, so it is attached "
        "as a file."
    )
    assert "40,001 characters long" in messages.message_attached(40_001)
    assert messages.output_of("test_big") == "Output of `test_big`"
