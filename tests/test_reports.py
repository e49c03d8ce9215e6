"""How a report reads in Slack: its output echoed without pinging anyone."""

from __future__ import annotations

import json

from bennettbot.notifier import Report
from bennettbot.reports import slack_blocks, slack_text


def test_text_and_code_reports_cannot_ping():
    output = "done <!channel>, thanks <@U1>; see <https://x.org|the log>\n"
    assert slack_text(Report("text", output)) == (
        "done &lt;!channel&gt;, thanks &lt;@U1&gt;; see <https://x.org|the log>\n"
    )
    assert slack_text(Report("code", "x = '<!here>'\n\n")) == (
        "```\nx = '&lt;!here&gt;'\n```"
    )


def test_every_text_string_in_blocks_is_made_inert():
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "<!here> news"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*hi* <!channel> <#C1>"},
            "fields": [{"type": "mrkdwn", "text": "by <@U1|alice>"}],
            "accessory": {
                "type": "button",
                "text": {"type": "plain_text", "text": "<!everyone>"},
                "url": "https://x.org/<@U1>",  # not a "text": untouched
            },
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://x>"}]},
        {"type": "divider"},
    ]
    made = slack_blocks(json.dumps(blocks))
    assert made[0]["text"] == {"type": "plain_text", "text": "&lt;!here&gt; news"}
    assert made[1]["text"]["text"] == "*hi* &lt;!channel&gt; <#C1>"
    assert made[1]["fields"][0]["text"] == "by &lt;@U1|alice&gt;"
    assert made[1]["accessory"]["text"]["text"] == "&lt;!everyone&gt;"
    assert made[1]["accessory"]["url"] == "https://x.org/<@U1>"
    assert made[2:] == blocks[2:]


def test_blocks_without_mentions_are_unchanged():
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi* 1 < 2"}}]
    assert slack_blocks(json.dumps(blocks)) == blocks
