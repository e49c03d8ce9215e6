"""The Home tab's view: Slack's limits hold however much there is to show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bennettbot import home
from bennettbot.models import Outcome, QueuedJob, QueueStatus, Requester, RunRecord

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
ASKER = Requester(user="U1", channel="C1", thread_ts="1.1")


def job(n: int, running: bool) -> QueuedJob:
    return QueuedJob(
        id=n,
        type=f"ns{n}_job",
        args={"text": "x" * 200 + "<!channel>"},
        requester=ASKER,
        start_after=NOW,
        started_at=NOW - timedelta(seconds=n) if running else None,
    )


def test_a_busy_bot_keeps_to_slacks_limits():
    jobs = [job(n, running=n % 2 == 0) for n in range(1, 3000)]
    runs = [
        RunRecord(n, n, "ns_job", {}, ASKER, NOW, NOW, 0, "", Outcome.SUCCEEDED, "")
        for n in range(20)
    ]
    view = home.view(QueueStatus(NOW, jobs, []), runs, names={"U1": "alice"})
    blocks = view["blocks"]
    assert view["type"] == "home" and len(blocks) <= home.MAX_BLOCKS
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(text) <= home.MAX_SECTION_CHARS for text in texts)
    assert "<!channel>" not in " ".join(texts)  # arguments cannot ping
    assert blocks[-1]["elements"][0]["text"].startswith("…and more")


def test_an_idle_bot_says_so():
    view = home.view(QueueStatus(NOW, [], []), [])
    contexts = [
        b["elements"][0]["text"] for b in view["blocks"] if b["type"] == "context"
    ]
    assert "Nothing is running." in contexts and "No runs yet." in contexts
