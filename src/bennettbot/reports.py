"""What to say when a job succeeds: the ``report_*`` rules, and how a report
reads in Slack (mentions made inert), as pure functions."""

from __future__ import annotations

import json
from typing import Any

from . import messages
from .jobconfig import JobDef
from .notifier import Report

# Slack: a message holds at most 50 blocks; code longer than this goes up as a
# file instead (text too long for any message does too: see slack.notifier).
MAX_CODE_MESSAGE_CHARS = 3_900
MAX_BLOCKS = 50


class BadReport(ValueError):
    """The job's output cannot be reported in its configured format."""


def success_report(job_type: str, job: JobDef, stdout: str) -> Report | None:
    """The report for a successful run, or None when nothing is to be said."""
    if not job.report_stdout:
        if not job.report_success:
            return None
        return Report("text", messages.succeeded(job_type))
    if not stdout.strip():
        return Report("text", messages.NO_OUTPUT)
    match job.report_format:
        case "blocks":
            check_blocks(stdout)
            return Report("blocks", stdout)
        case "code" if len(stdout) <= MAX_CODE_MESSAGE_CHARS:
            return Report("code", stdout)
        case "code" | "file":
            return Report("file", stdout, filename=f"{job_type}.txt")
        case _:
            return Report("text", stdout)


def check_blocks(text: str) -> list[dict]:
    """Parse ``text`` as a JSON list of Slack blocks, or raise ``BadReport``."""
    try:
        blocks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadReport(f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(blocks, list) or not blocks:
        raise BadReport("expected a non-empty JSON list of blocks")
    if len(blocks) > MAX_BLOCKS:
        raise BadReport(f"{len(blocks)} blocks, Slack allows at most {MAX_BLOCKS}")
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadReport(f"block {index} is not an object with a 'type'")
    return blocks


def slack_text(report: Report) -> str:
    """The message text of a ``text`` or ``code`` report; mentions in the
    output are shown literally rather than notifying anyone."""
    if report.format == "code":
        return f"```\n{messages.no_pings(report.content.rstrip())}\n```"
    return messages.no_pings(report.content)


def slack_blocks(content: str) -> list[dict]:
    """A ``blocks`` report's blocks, with mentions made inert in every string
    under a ``"text"`` key (mrkdwn and plain_text objects)."""
    return _no_pings_in(json.loads(content))


def _no_pings_in(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: messages.no_pings(item)
            if key == "text" and isinstance(item, str)
            else _no_pings_in(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_no_pings_in(item) for item in value]
    return value
