"""An independent check of Slack's structural limits for messages of blocks
(Block Kit reference: at most 50 blocks; header text plain_text ≤ 150
characters; section text ≤ 3,000; context ≤ 10 elements; block_id ≤ 255)."""

from __future__ import annotations

import json
import re

LINK = re.compile(r"<(?:https?://[^|<>\s]+\|[^<>]+|https?://[^|<>\s]+|[@#!][^<>]+)>")


def check_blocks(blocks: object) -> list[dict]:
    """``blocks`` if Slack would accept them as a message's blocks; else fail."""
    assert isinstance(blocks, list) and 1 <= len(blocks) <= 50, "1 to 50 blocks"
    for block in blocks:
        assert isinstance(block, dict), block
        assert len(block.get("block_id", "")) <= 255
        kind = block.get("type")
        if kind == "header":
            _text(block["text"], 150, kinds=("plain_text",))
        elif kind == "section":
            _text(block["text"], 3000)
        elif kind == "context":
            elements = block["elements"]
            assert 1 <= len(elements) <= 10
            for element in elements:
                _text(element, 3000)
        else:
            assert kind == "divider", f"unexpected block type {kind!r}"
    json.dumps(blocks)  # serialisable as the job's stdout
    return blocks


def _text(obj: dict, limit: int, kinds: tuple[str, ...] = ("mrkdwn", "plain_text")):
    assert obj["type"] in kinds, obj
    text = obj["text"]
    assert isinstance(text, str) and 1 <= len(text) <= limit, (len(text), limit)
    if obj["type"] == "mrkdwn":
        bare = LINK.sub("", text)
        assert "<" not in bare and ">" not in bare, f"unescaped angle bracket: {text!r}"
