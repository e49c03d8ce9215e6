"""Slack blocks within Slack's limits, for jobs with ``report_format = "blocks"``.

Slack refuses a message with more than 50 blocks, a header longer than 150
characters or a section text longer than 3,000. These helpers never produce
one: long texts are cut with a note of how much was left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000


def escape(text: str) -> str:
    """Text as Slack shows it literally inside mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, text: str) -> str:
    """A mrkdwn link; the text cannot end the link early."""
    return f"<{url}|{escape(text)}>"


def header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text)}}


def section(text: str) -> dict:
    if len(text) > MAX_SECTION:
        raise ValueError(f"section text of {len(text)} characters; Slack allows 3000")
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def listing(title: str, lines: Sequence[str], limit: int = MAX_SECTION) -> str:
    """``title`` then as many of ``lines`` as fit in ``limit`` characters, then
    how many were left out."""
    text = title
    for shown, line in enumerate(lines):
        left = len(lines) - shown
        note = f"\n…and {left} more" if left > 1 else ""
        if len(text) + 1 + len(line) + len(note) > limit:
            return text + f"\n…and {left} more"
        text += "\n" + line
    return text


def capped(blocks: list[dict], *, noun: str = "sections") -> list[dict]:
    """``blocks``, or the first 49 and a note of how many were left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    left = len(blocks) - (MAX_BLOCKS - 1)
    return [*blocks[: MAX_BLOCKS - 1], context(f"…and {left} more {noun} not shown")]


def dumps(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False, indent=1)


def _cut(text: str) -> str:
    text = " ".join(text.split()) or "(untitled)"
    return text if len(text) <= MAX_HEADER else text[: MAX_HEADER - 1] + "…"
