"""The bot's Home tab in Slack: what it is doing, as Block Kit. Pure: the
caller reads the store and publishes the view (``views.publish``).

Sections: running jobs (type, who asked, for how long), waiting jobs (when
due), active and coming suppressions, the next scheduled runs, and the last
runs with how they ended and how long they took. A guest sees the jobs of
restricted namespaces by type only, never with their arguments. Slack's
limits hold: at most ``MAX_BLOCKS`` blocks, and section texts cut with a note.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from . import messages
from .models import QueuedJob, QueueStatus, RunRecord

MAX_BLOCKS = 100  # Slack's limit for a Home tab view
MAX_SECTION_CHARS = 3000  # Slack's limit for a section's text
LAST_RUNS = 15

JSON = dict


def view(
    status: QueueStatus,
    runs: Sequence[RunRecord],
    *,
    hidden_for: Collection[str] = (),
    names: Mapping[str, str] | None = None,
) -> JSON:
    """The Home tab: ``status`` (from the job queue) and the last ``runs``."""
    names = names or {}
    now = status.now
    running = [j for j in status.jobs if j.started_at is not None]
    waiting = [j for j in status.jobs if j.started_at is None]
    parts = [
        (
            "Running",
            [
                f"• {_job(j, hidden_for)}, asked by {_who(j.requester.user, names)}, "
                f"for {messages.duration((now - j.started_at).total_seconds())}"
                for j in running
                if j.started_at is not None
            ],
            "Nothing is running.",
        ),
        (
            "Waiting",
            [
                f"• {_job(j, hidden_for)}, due {messages.when(j.start_after)}"
                for j in waiting
            ],
            "Nothing is waiting.",
        ),
        (
            "Suppressions",
            [
                f"• `{s.job_type}` "
                f"{'active' if s.start_at <= now else 'coming'}: "
                f"{messages.when(s.start_at)} to {messages.when(s.end_at)}"
                for s in status.suppressions
            ],
            "No suppressions.",
        ),
        (
            "Scheduled",
            [
                f"• `{s.command}` next at {messages.local_time(s.next_at, s.timezone)}"
                for s in sorted(status.schedules, key=lambda s: s.next_at)
            ],
            "No schedules.",
        ),
        (
            f"Last {LAST_RUNS} runs",
            [
                f"• {run.id} `{run.type}` {messages.OUTCOME_WORDS[run.outcome]}, "
                f"{_took(run, now)}, started {messages.when(run.started_at)}"
                for run in runs[:LAST_RUNS]
            ],
            "No runs yet.",
        ),
    ]
    blocks: list[JSON] = [
        {"type": "header", "text": {"type": "plain_text", "text": "bennettbot"}},
        _context(f"As of {messages.when(now)}. Type `help` in a message to me."),
    ]
    for title, lines, empty in parts:
        blocks.append({"type": "divider"})
        blocks.append(_section(f"*{title}*"))
        blocks.extend(_sections(lines) if lines else [_context(empty)])
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1]
        blocks.append(_context("…and more: the view is cut to Slack's limit."))
    return {"type": "home", "blocks": blocks}


def _job(job: QueuedJob, hidden_for: Collection[str]) -> str:
    if job.namespace in hidden_for or not job.args:
        return f"`{job.type}`"
    args = " ".join(f"{k}={messages.escape(v)}" for k, v in sorted(job.args.items()))
    return f"`{job.type}` ({args})"


def _who(user: str, names: Mapping[str, str]) -> str:
    return f"@{messages.escape(names.get(user, user))}" if user else "a webhook"


def _took(run: RunRecord, now: datetime) -> str:
    end = run.ended_at or now
    took = messages.duration((end - run.started_at).total_seconds())
    return f"took {took}" if run.ended_at else f"for {took}"


def _sections(lines: list[str]) -> list[JSON]:
    """Lines grouped into sections of at most ``MAX_SECTION_CHARS``."""
    sections, current = [], ""
    for line in lines:
        if len(line) > MAX_SECTION_CHARS:
            line = line[: MAX_SECTION_CHARS - 1] + "…"
        if current and len(current) + 1 + len(line) > MAX_SECTION_CHARS:
            sections.append(_section(current))
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        sections.append(_section(current))
    return sections


def _section(text: str) -> JSON:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> JSON:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
