"""The persistent queue, suppressions and run history, in SQLite via aiosqlite.

Invariants, enforced by the schema rather than by checks in Python:

- at most one *waiting* job per type (scheduling again updates that job);
- at most one *running* job per type (a second request waits behind it);
- a run that ends takes its job off the queue (a trigger), atomically.

Reservation is one ``UPDATE … RETURNING`` statement, so it is atomic even when
several processes share the file (WAL mode, busy timeout). Within a process
one connection is shared, and multi-statement transactions hold a lock so that
no other coroutine's statement can slip into them. Times are stored as integer
microseconds since the epoch (UTC) and compared as numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import aiosqlite
import structlog

from .models import (
    Confirmation,
    Outcome,
    QueuedJob,
    Requester,
    RunRecord,
    ScheduleResult,
    StartupError,
    Suppression,
)

# Each entry upgrades the schema by one version (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        args TEXT NOT NULL DEFAULT '{}',
        requester TEXT NOT NULL DEFAULT '',
        channel TEXT NOT NULL DEFAULT '',
        thread_ts TEXT NOT NULL DEFAULT '',
        is_im INTEGER NOT NULL DEFAULT 0,
        start_after INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'running')),
        started_at INTEGER,
        updates INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX jobs_one_waiting_per_type ON jobs (type)
        WHERE state = 'waiting';
    CREATE UNIQUE INDEX jobs_one_running_per_type ON jobs (type)
        WHERE state = 'running';
    CREATE INDEX jobs_by_start ON jobs (state, start_after);
    CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY,
        job_type TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        end_at INTEGER NOT NULL CHECK (end_at > start_at)
    );
    CREATE INDEX suppressions_by_type ON suppressions (job_type, end_at);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        args TEXT NOT NULL,
        requester TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        exit_status INTEGER,
        log_dir TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT 'running',
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX runs_by_job ON runs (job_id);
    CREATE INDEX runs_running ON runs (outcome) WHERE outcome = 'running';
    CREATE TRIGGER finished_runs_leave_the_queue
    AFTER UPDATE OF ended_at ON runs WHEN NEW.ended_at IS NOT NULL
    BEGIN
        DELETE FROM jobs WHERE id = NEW.job_id AND state = 'running';
    END;
    """,
    """
    CREATE TABLE tech_support_ooo (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        start_date TEXT NOT NULL,
        end_date TEXT NOT NULL
    );
    CREATE TABLE support_reposts (
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        reposted_at INTEGER NOT NULL,
        PRIMARY KEY (channel, ts)
    );
    """,
    """
    CREATE TABLE github_deliveries (
        id TEXT PRIMARY KEY,
        received_at INTEGER NOT NULL
    );
    CREATE INDEX github_deliveries_by_age ON github_deliveries (received_at);
    """,
    """
    CREATE TABLE heartbeats (
        role TEXT PRIMARY KEY,
        at INTEGER NOT NULL
    );
    """,
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until INTEGER NOT NULL
    );
    ALTER TABLE jobs ADD COLUMN holder TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN holder TEXT NOT NULL DEFAULT '';
    CREATE TABLE slack_events (
        id TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
    );
    CREATE INDEX slack_events_by_age ON slack_events (seen_at);
    """,
    """
    CREATE INDEX runs_by_type ON runs (type, id);
    ALTER TABLE jobs ADD COLUMN stop_requested_by TEXT NOT NULL DEFAULT '';
    """,
    """
    CREATE TABLE schedule_marks (
        key TEXT PRIMARY KEY,
        at INTEGER NOT NULL
    );
    """,
    """
    CREATE TABLE confirmations (
        id INTEGER PRIMARY KEY,
        job_type TEXT NOT NULL,
        args TEXT NOT NULL,
        requester TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        is_im INTEGER NOT NULL,
        delay_seconds REAL NOT NULL,
        asked_at INTEGER NOT NULL,
        message_channel TEXT NOT NULL DEFAULT '',
        message_ts TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'confirmed', 'cancelled', 'expired')),
        decided_by TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX confirmations_pending ON confirmations (asked_at)
        WHERE state = 'pending';
    """,
    """
    ALTER TABLE runs ADD COLUMN due_at INTEGER;
    CREATE TABLE slack_api_events (
        method TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('error', 'retry')),
        count INTEGER NOT NULL,
        PRIMARY KEY (method, kind)
    );
    """,
)
DISPATCHER_LEASE = "dispatcher"
MAX_ID = 2**63 - 1  # SQLite's largest integer
T = TypeVar("T")
_log = structlog.get_logger("store")

_JOB_COLUMNS = (
    "id, type, args, requester, channel, thread_ts, is_im, start_after, started_at"
)


def to_db(when: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: every stored time must be UTC-aware")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_db(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(
        microsecond=value % 1_000_000
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Params = Sequence[object] | Mapping[str, object]


class StoreError(StartupError):
    """The database cannot be used at all; the message is one line."""


class Store:
    """Owns the process's single database connection."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str, *, busy_timeout_ms: int = 10_000) -> Store:
        """Open (creating and migrating as needed) the database at ``path``.

        A file that is not a usable database raises ``StoreError`` with one
        line that says so.
        """
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"DB_PATH: cannot open {path} ({exc})") from None
        connection.row_factory = aiosqlite.Row
        store = cls(connection)
        try:
            await store._configure(busy_timeout_ms)
            await store._migrate()
        except sqlite3.Error as exc:
            await connection.close()
            raise StoreError(
                f"DB_PATH: {path} is not a usable SQLite database ({exc})"
            ) from None
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def _configure(self, busy_timeout_ms: int) -> None:
        await self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms):d}")
        await self._db.execute("PRAGMA journal_mode = WAL")
        await self._db.execute("PRAGMA synchronous = NORMAL")

    async def _migrate(self) -> None:
        async with self._transaction():
            version = await self._scalar("PRAGMA user_version")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number:d}")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """A write transaction that no other coroutine's statement can join."""
        async with self._lock:
            try:
                # Inside the try: if we are cancelled while BEGIN is queued,
                # the database thread still runs it, so it must be undone.
                await self._db.execute("BEGIN IMMEDIATE")
                yield
                await self._db.execute("COMMIT")
            except BaseException:
                # Queued after BEGIN (aiosqlite runs statements in order), so
                # it always undoes it; "no transaction is active" is fine.
                await asyncio.shield(self._rollback())
                raise

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.OperationalError):
            await self._db.execute("ROLLBACK")

    async def _scalar(self, sql: str, params: Params = ()) -> int:
        """The first column of the first row, 0 for none; caller holds the lock."""
        rows = await self._db.execute_fetchall(sql, params)
        row = next(iter(rows), None)
        return row[0] if row and row[0] is not None else 0

    async def _rows(self, sql: str, params: Params = ()) -> list:
        """Every row of one statement (one hop to the database thread)."""
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        async with self._lock:
            return await self._scalar("PRAGMA user_version")

    # -- the queue ---------------------------------------------------------

    async def schedule_job(
        self,
        job_type: str,
        args: Mapping[str, str],
        requester: Requester,
        start_after: datetime,
    ) -> ScheduleResult:
        """Queue a job, or update the waiting job of its type (only one waits)."""
        # One statement, so atomic on its own; it also tells whether a job of
        # the type is running and which suppression covers the start.
        [(job_id, updates, running, suppressed_until)] = await self._rows(
            """
            INSERT INTO jobs (type, args, requester, channel, thread_ts, is_im,
                              start_after)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (type) WHERE state = 'waiting' DO UPDATE SET
                args = excluded.args, requester = excluded.requester,
                channel = excluded.channel, thread_ts = excluded.thread_ts,
                is_im = excluded.is_im, start_after = excluded.start_after,
                updates = updates + 1
            RETURNING id, updates,
                (SELECT r.id FROM jobs AS r
                 WHERE r.type = jobs.type AND r.state = 'running'),
                (SELECT MAX(s.end_at) FROM suppressions AS s
                 WHERE s.job_type = jobs.type AND s.start_at <= jobs.start_after
                   AND s.end_at > jobs.start_after)
            """,
            (
                job_type,
                json.dumps(dict(args), sort_keys=True),
                requester.user,
                requester.channel,
                requester.thread_ts,
                int(requester.is_im),
                to_db(start_after),
            ),
        )
        return ScheduleResult(
            job_id=job_id,
            updated=updates > 0,
            running_job_id=running or None,
            start_after=start_after,
            suppressed_until=from_db(suppressed_until) if suppressed_until else None,
        )

    async def cancel_job(self, job_type: str) -> int | None:
        """Remove the waiting job of ``job_type``; its id, or None if none waited."""
        rows = await self._rows(
            "DELETE FROM jobs WHERE type = ? AND state = 'waiting' RETURNING id",
            (job_type,),
        )
        return rows[0][0] if rows else None

    async def find_job(self, job_id: int) -> QueuedJob | None:
        """Job ``job_id``, waiting or running, or None."""
        if not 0 < job_id <= MAX_ID:
            return None
        rows = await self._rows(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        )
        return _job(rows[0]) if rows else None

    async def remove_job(self, job_id: int) -> QueuedJob | None:
        """Take waiting job ``job_id`` off the queue; None when no job of
        that id is waiting (a running one is stopped, not removed)."""
        if not 0 < job_id <= MAX_ID:  # no such row; SQLite could not bind it
            return None
        rows = await self._rows(
            f"""DELETE FROM jobs WHERE id = ? AND state = 'waiting'
                RETURNING {_JOB_COLUMNS}""",
            (job_id,),
        )
        return _job(rows[0]) if rows else None

    async def schedule_mark(self, key: str) -> datetime | None:
        """When schedule ``key`` last fired (or was first seen); None: never."""
        rows = await self._rows("SELECT at FROM schedule_marks WHERE key = ?", (key,))
        return from_db(rows[0][0]) if rows else None

    async def move_schedule_mark(
        self, key: str, seen: datetime | None, to: datetime
    ) -> bool:
        """Set schedule ``key``'s mark to ``to`` if it is still ``seen``: True
        for the one caller that moved it (a schedule fires once)."""
        if seen is None:
            rows = await self._rows(
                """INSERT INTO schedule_marks (key, at) VALUES (?, ?)
                   ON CONFLICT DO NOTHING RETURNING 1""",
                (key, to_db(to)),
            )
        else:
            rows = await self._rows(
                "UPDATE schedule_marks SET at = ? WHERE key = ? AND at = ? RETURNING 1",
                (to_db(to), key, to_db(seen)),
            )
        return bool(rows)

    async def add_confirmation(
        self,
        job_type: str,
        args: Mapping[str, str],
        requester: Requester,
        delay_seconds: float,
        now: datetime,
    ) -> int:
        """A pending question before queuing ``job_type``; its id."""
        rows = await self._rows(
            """INSERT INTO confirmations (job_type, args, requester, channel,
                   thread_ts, is_im, delay_seconds, asked_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (
                job_type,
                json.dumps(dict(args), sort_keys=True),
                requester.user,
                requester.channel,
                requester.thread_ts,
                int(requester.is_im),
                delay_seconds,
                to_db(now),
            ),
        )
        return rows[0][0]

    async def set_confirmation_message(
        self, confirmation_id: int, channel: str, ts: str
    ) -> None:
        await self._rows(
            """UPDATE confirmations SET message_channel = ?, message_ts = ?
               WHERE id = ?""",
            (channel, ts, confirmation_id),
        )

    async def find_confirmation(self, confirmation_id: int) -> Confirmation | None:
        if not 0 < confirmation_id <= MAX_ID:
            return None
        rows = await self._rows(
            f"SELECT {_CONFIRMATION_COLUMNS} FROM confirmations WHERE id = ?",
            (confirmation_id,),
        )
        return _confirmation(rows[0]) if rows else None

    async def decide_confirmation(
        self, confirmation_id: int, state: str, by: str, *, asked_after: datetime
    ) -> Confirmation | None:
        """Move a pending confirmation asked after ``asked_after`` to
        ``state``; None when it was not pending (or is too old): only one
        press decides."""
        if not 0 < confirmation_id <= MAX_ID:
            return None
        rows = await self._rows(
            f"""UPDATE confirmations SET state = ?, decided_by = ?
                WHERE id = ? AND state = 'pending' AND asked_at > ?
                RETURNING {_CONFIRMATION_COLUMNS}""",
            (state, by, confirmation_id, to_db(asked_after)),
        )
        return _confirmation(rows[0]) if rows else None

    async def expire_confirmations(self, asked_before: datetime) -> list[Confirmation]:
        """Mark the pending confirmations asked at or before ``asked_before``
        expired; those."""
        rows = await self._rows(
            f"""UPDATE confirmations SET state = 'expired'
                WHERE state = 'pending' AND asked_at <= ?
                RETURNING {_CONFIRMATION_COLUMNS}""",
            (to_db(asked_before),),
        )
        return [_confirmation(row) for row in rows]

    async def oldest_pending_confirmation(self) -> datetime | None:
        rows = await self._rows(
            "SELECT MIN(asked_at) FROM confirmations WHERE state = 'pending'"
        )
        return from_db(rows[0][0]) if rows and rows[0][0] is not None else None

    async def release_job(self, job_id: int) -> None:
        """Take running job ``job_id`` off the queue without a run (its run
        could not even be recorded), so that its type is free again."""
        await self._rows(
            "DELETE FROM jobs WHERE id = ? AND state = 'running'", (job_id,)
        )

    async def request_stop(self, job_id: int, by: str) -> QueuedJob | None:
        """Ask the dispatcher running job ``job_id`` to stop it (``by``: who
        asked); None when no job of that id is running."""
        if not 0 < job_id <= MAX_ID:
            return None
        rows = await self._rows(
            f"""UPDATE jobs SET stop_requested_by = ?
                WHERE id = ? AND state = 'running' RETURNING {_JOB_COLUMNS}""",
            (by or "someone", job_id),
        )
        return _job(rows[0]) if rows else None

    async def stop_requests(self, holder: str) -> list[tuple[int, str]]:
        """The running jobs of ``holder`` that someone asked to stop: their
        ids and who asked."""
        rows = await self._rows(
            """SELECT id, stop_requested_by FROM jobs
               WHERE state = 'running' AND holder = ? AND stop_requested_by != ''""",
            (holder,),
        )
        return [(row[0], row[1]) for row in rows]

    async def reserve_due(self, now: datetime, holder: str = "") -> list[QueuedJob]:
        """Atomically mark every startable job running (by ``holder``, the
        dispatcher lease's) and return them.

        A job is startable when it is due, no job of its type is running and
        no suppression of its type covers ``now``.
        """
        at = to_db(now)
        rows = await self._rows(
            f"""
            UPDATE jobs SET state = 'running', started_at = :now, holder = :holder
            WHERE state = 'waiting' AND start_after <= :now
              AND NOT EXISTS (SELECT 1 FROM jobs AS r
                              WHERE r.type = jobs.type AND r.state = 'running')
              AND NOT EXISTS (SELECT 1 FROM suppressions AS s
                              WHERE s.job_type = jobs.type
                                AND s.start_at <= :now AND s.end_at > :now)
            RETURNING {_JOB_COLUMNS}
            """,
            {"now": at, "holder": holder},
        )
        return sorted((_job(row) for row in rows), key=lambda j: j.id)

    async def next_wakeup(self, now: datetime) -> datetime | None:
        """When a waiting, unblocked job may next become startable.

        A job that is startable already (it became due, or was queued by
        another process, after the last reservation) gives its start time,
        which is not after ``now``: look again at once.
        """
        async with self._lock:
            value = await self._scalar(
                """
                SELECT MIN(CASE WHEN j.start_after > :now THEN j.start_after ELSE
                    COALESCE((SELECT MIN(s.end_at) FROM suppressions AS s
                              WHERE s.job_type = j.type
                                AND s.start_at <= :now AND s.end_at > :now),
                             j.start_after) END)
                FROM jobs AS j
                WHERE j.state = 'waiting'
                  AND NOT EXISTS (SELECT 1 FROM jobs AS r
                                  WHERE r.type = j.type AND r.state = 'running')
                """,
                {"now": to_db(now)},
            )
        return from_db(value) if value else None

    async def list_jobs(self) -> list[QueuedJob]:
        """Running jobs first (by start), then waiting jobs (by start time)."""
        rows = await self._rows(
            f"""SELECT {_JOB_COLUMNS} FROM jobs
                ORDER BY state = 'waiting', COALESCE(started_at, start_after), id"""
        )
        return [_job(row) for row in rows]

    # -- suppressions ------------------------------------------------------

    async def schedule_suppression(
        self, job_type: str, start_at: datetime, end_at: datetime
    ) -> int:
        if end_at <= start_at:
            raise ValueError("a suppression must end after it starts")
        rows = await self._rows(
            """INSERT INTO suppressions (job_type, start_at, end_at)
               VALUES (?, ?, ?) RETURNING id""",
            (job_type, to_db(start_at), to_db(end_at)),
        )
        return rows[0][0]

    async def cancel_suppressions(self, job_type: str) -> int:
        rows = await self._rows(
            "DELETE FROM suppressions WHERE job_type = ? RETURNING id", (job_type,)
        )
        return len(rows)

    async def list_suppressions(self, now: datetime) -> list[Suppression]:
        """Active and scheduled suppressions; expired ones are deleted."""
        at = to_db(now)
        async with self._transaction():
            await self._db.execute("DELETE FROM suppressions WHERE end_at <= ?", (at,))
            rows = await self._db.execute_fetchall(
                """SELECT id, job_type, start_at, end_at FROM suppressions
                   ORDER BY start_at, id"""
            )
        return [
            Suppression(row[0], row[1], from_db(row[2]), from_db(row[3]))
            for row in rows
        ]

    # -- tech-support ------------------------------------------------------

    async def set_out_of_office(self, start: date, end: date) -> None:
        await self._rows(
            """INSERT INTO tech_support_ooo (id, start_date, end_date) VALUES (1, ?, ?)
               ON CONFLICT (id) DO UPDATE SET start_date = excluded.start_date,
                                              end_date = excluded.end_date""",
            (start.isoformat(), end.isoformat()),
        )

    async def clear_out_of_office(self) -> None:
        await self._rows("DELETE FROM tech_support_ooo")

    async def out_of_office(self) -> tuple[date, date] | None:
        """The stored out-of-office period (past ones included), or None."""
        rows = await self._rows("SELECT start_date, end_date FROM tech_support_ooo")
        if not rows:
            return None
        return date.fromisoformat(rows[0][0]), date.fromisoformat(rows[0][1])

    async def mark_reposted(self, channel: str, ts: str, now: datetime) -> bool:
        """Remember a reposted support request; False if it already was."""
        rows = await self._rows(
            """INSERT INTO support_reposts (channel, ts, reposted_at) VALUES (?, ?, ?)
               ON CONFLICT DO NOTHING RETURNING 1""",
            (channel, ts, to_db(now)),
        )
        return bool(rows)

    async def first_delivery(self, delivery_id: str, now: datetime) -> bool:
        """Record a GitHub delivery id; False if it was recorded before."""
        rows = await self._rows(
            """INSERT INTO github_deliveries (id, received_at) VALUES (?, ?)
               ON CONFLICT DO NOTHING RETURNING 1""",
            (delivery_id, to_db(now)),
        )
        return bool(rows)

    async def forget_delivery(self, *ids: str) -> None:
        """Forget these delivery ids (their work was not done after all)."""
        async with self._transaction():
            for delivery_id in ids:
                await self._db.execute(
                    "DELETE FROM github_deliveries WHERE id = ?", (delivery_id,)
                )

    async def forget_deliveries(self, before: datetime) -> int:
        """Forget delivery ids recorded before ``before``; how many."""
        rows = await self._rows(
            "DELETE FROM github_deliveries WHERE received_at < ? RETURNING 1",
            (to_db(before),),
        )
        return len(rows)

    async def beat(self, role: str, now: datetime) -> None:
        """Record that ``role`` is alive (healthchecks read it)."""
        await self._rows(
            """INSERT INTO heartbeats (role, at) VALUES (?, ?)
               ON CONFLICT (role) DO UPDATE SET at = excluded.at""",
            (role, to_db(now)),
        )

    async def count_slack_event(self, method: str, kind: str) -> None:
        """One more Slack API ``error`` or ``retry`` of ``method`` (metrics)."""
        await self._rows(
            """INSERT INTO slack_api_events (method, kind, count) VALUES (?, ?, 1)
               ON CONFLICT (method, kind) DO UPDATE SET count = count + 1""",
            (method[:100], kind),
        )

    async def metrics_snapshot(
        self, durations: Sequence[float], lags: Sequence[float]
    ) -> MetricsSnapshot:
        """What the metrics that live in the database say now: runs by type
        and outcome, run durations and due → start lags as cumulative bucket
        counts (``durations`` and ``lags``: upper bounds in seconds), jobs by
        state, heartbeats, Slack API errors and retries."""
        runs = await self._rows(
            "SELECT type, outcome, COUNT(*) FROM runs GROUP BY type, outcome"
        )
        took = "(ended_at - started_at) / 1e6"
        late = "(started_at - due_at) / 1e6"
        duration_rows = await self._rows(_histogram_sql(took, durations, "ended_at"))
        lag_rows = await self._rows(_histogram_sql(late, lags, "due_at"))
        jobs = await self._rows("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        beats = await self._rows("SELECT role, at FROM heartbeats")
        slack = await self._rows("SELECT method, kind, count FROM slack_api_events")
        return MetricsSnapshot(
            runs=[(t, o, n) for t, o, n in runs],
            durations={
                row[0]: (row[1], row[2], list(row[3:])) for row in duration_rows
            },
            lags={row[0]: (row[1], row[2], list(row[3:])) for row in lag_rows},
            jobs={state: n for state, n in jobs},
            heartbeats={role: from_db(at) for role, at in beats},
            slack=[(m, k, n) for m, k, n in slack],
        )

    async def last_beat(self, role: str) -> datetime | None:
        rows = await self._rows("SELECT at FROM heartbeats WHERE role = ?", (role,))
        return from_db(rows[0][0]) if rows else None

    async def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's own counter);
        a cheap read, for noticing work that other processes queued."""
        async with self._lock:
            return await self._scalar("PRAGMA data_version")

    # -- the dispatcher lease (see ``lease`` for the contract) ---------------

    async def claim_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        rows = await self._rows(
            """INSERT INTO leases (name, holder, until) VALUES (:name, :holder, :until)
               ON CONFLICT (name) DO UPDATE SET
                   holder = excluded.holder, until = excluded.until
               WHERE leases.holder = excluded.holder OR leases.until <= :now
               RETURNING holder""",
            {
                "name": DISPATCHER_LEASE,
                "holder": holder,
                "until": to_db(until),
                "now": to_db(now),
            },
        )
        return bool(rows)

    async def release_lease(self, holder: str) -> None:
        await self._rows(
            "DELETE FROM leases WHERE name = ? AND holder = ?",
            (DISPATCHER_LEASE, holder),
        )

    async def lease_free(self, now: datetime) -> bool:
        rows = await self._rows(
            "SELECT 1 FROM leases WHERE name = ? AND until > ?",
            (DISPATCHER_LEASE, to_db(now)),
        )
        return not rows

    # -- Slack events, once across bot processes ----------------------------

    async def first_event(self, event_id: str, now: datetime) -> bool:
        """Record a Slack ``event_id``; False if any process recorded it before."""
        rows = await self._rows(
            """INSERT INTO slack_events (id, seen_at) VALUES (?, ?)
               ON CONFLICT DO NOTHING RETURNING 1""",
            (event_id, to_db(now)),
        )
        return bool(rows)

    async def forget_events(self, before: datetime) -> int:
        rows = await self._rows(
            "DELETE FROM slack_events WHERE seen_at < ? RETURNING 1", (to_db(before),)
        )
        return len(rows)

    # -- run history -------------------------------------------------------

    async def start_run(self, job: QueuedJob, log_dir: str, holder: str = "") -> int:
        """Record that ``job`` (already reserved) has started; the run's id."""
        assert job.started_at is not None, "reserve the job before starting it"
        rows = await self._rows(
            """INSERT INTO runs (job_id, type, args, requester, channel, thread_ts,
                                 started_at, log_dir, holder, due_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (
                job.id,
                job.type,
                json.dumps(dict(job.args), sort_keys=True),
                job.requester.user,
                job.requester.channel,
                job.requester.thread_ts,
                to_db(job.started_at),
                log_dir,
                holder,
                to_db(job.start_after),
            ),
        )
        return rows[0][0]

    async def finish_run(
        self,
        run_id: int,
        job_id: int,
        ended_at: datetime,
        outcome: Outcome,
        exit_status: int | None = None,
        message: str = "",
        *,
        holder: str = "",
    ) -> bool:
        """Record how a run of ``holder`` ended; the schema's trigger takes
        its job off the queue. False when the run was no longer running as
        ``holder``'s (the next holder of the lease recorded it already)."""
        rows = await self._rows(
            """UPDATE runs SET ended_at = ?, outcome = ?, exit_status = ?, message = ?
               WHERE id = ? AND job_id = ? AND outcome = 'running' AND holder = ?
               RETURNING 1""",
            (
                to_db(ended_at),
                outcome.value,
                exit_status,
                message,
                run_id,
                job_id,
                holder,
            ),
        )
        return bool(rows)

    async def recover_interrupted(self, now: datetime, holder: str) -> list[QueuedJob]:
        """Unblock types left running by other holders of the dispatcher
        lease, which is ``holder``'s now (so theirs lapsed); their jobs.

        Their runs are recorded as interrupted. Call on taking the lease,
        before reserving anything.
        """
        at = to_db(now)
        async with self._transaction():
            rows = await self._db.execute_fetchall(
                f"""DELETE FROM jobs WHERE state = 'running' AND holder != ?
                    RETURNING {_JOB_COLUMNS}""",
                (holder,),
            )
            await self._db.execute(
                """UPDATE runs SET outcome = 'interrupted', ended_at = ?,
                       message = 'the bot stopped while this job was running'
                   WHERE outcome = 'running' AND holder != ?""",
                (at, holder),
            )
        return [_job(row) for row in rows]

    async def run_log_dir(self, run_id: int) -> str | None:
        """Run ``run_id``'s log folder (relative to ``LOGS_DIR``), or None."""
        if not 0 < run_id <= MAX_ID:
            return None
        rows = await self._rows("SELECT log_dir FROM runs WHERE id = ?", (run_id,))
        return rows[0][0] if rows else None

    async def runs(self, limit: int = 50) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = await self._rows(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [_run(row) for row in rows]

    async def runs_of(
        self, job_types: Collection[str], limit: int = 10
    ) -> list[RunRecord]:
        """The most recent runs of ``job_types``, newest first: each type's
        through the ``(type, id)`` index, however many runs there are."""
        types = sorted(set(job_types))
        if not types:
            return []
        one_type = (
            f"SELECT * FROM (SELECT {_RUN_COLUMNS} FROM runs WHERE type = ?"
            " ORDER BY id DESC LIMIT ?)"
        )
        sql = " UNION ALL ".join([one_type] * len(types))
        params = [value for job_type in types for value in (job_type, limit)]
        rows = await self._rows(f"{sql} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_run(row) for row in rows]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    runs: list[tuple[str, str, int]]  # (type, outcome, count)
    # type -> (count, sum in seconds, cumulative count per bucket)
    durations: dict[str, tuple[int, float, list[int]]]
    lags: dict[str, tuple[int, float, list[int]]]
    jobs: dict[str, int]  # state -> count
    heartbeats: dict[str, datetime]
    slack: list[tuple[str, str, int]]  # (method, kind, count)


def _histogram_sql(value: str, bounds: Sequence[float], present: str) -> str:
    """Per type: how many, their sum, and how many at most each bound."""
    buckets = ", ".join(f"SUM({value} <= {float(b)!r})" for b in bounds)
    return (
        f"SELECT type, COUNT(*), TOTAL({value}), {buckets} FROM runs "
        f"WHERE {present} IS NOT NULL GROUP BY type"
    )


_CONFIRMATION_COLUMNS = (
    "id, job_type, args, requester, channel, thread_ts, is_im, delay_seconds, "
    "asked_at, message_channel, message_ts, state, decided_by"
)


def _confirmation(row: aiosqlite.Row) -> Confirmation:
    return Confirmation(
        id=row[0],
        job_type=row[1],
        args=json.loads(row[2]),
        requester=Requester(
            user=row[3], channel=row[4], thread_ts=row[5], is_im=bool(row[6])
        ),
        delay_seconds=row[7],
        asked_at=from_db(row[8]),
        channel=row[9],
        ts=row[10],
        state=row[11],
        decided_by=row[12],
    )


_RUN_COLUMNS = (
    "id, job_id, type, args, requester, channel, thread_ts, started_at, ended_at, "
    "exit_status, log_dir, outcome, message"
)


def _run(row: aiosqlite.Row) -> RunRecord:
    return RunRecord(
        id=row[0],
        job_id=row[1],
        type=row[2],
        args=json.loads(row[3]),
        requester=Requester(user=row[4], channel=row[5], thread_ts=row[6]),
        started_at=from_db(row[7]),
        ended_at=from_db(row[8]) if row[8] is not None else None,
        exit_status=row[9],
        log_dir=row[10],
        outcome=Outcome(row[11]),
        message=row[12],
    )


def _job(row: aiosqlite.Row) -> QueuedJob:
    return QueuedJob(
        id=row["id"],
        type=row["type"],
        args=json.loads(row["args"]),
        requester=Requester(
            user=row["requester"],
            channel=row["channel"],
            thread_ts=row["thread_ts"],
            is_im=bool(row["is_im"]),
        ),
        start_after=from_db(row["start_after"]),
        started_at=from_db(row["started_at"]) if row["started_at"] else None,
    )


def _statements(script: str) -> list[str]:
    """Split a script into statements (a trigger's body keeps its ``;``)."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"incomplete SQL statement in a migration: {pending!r}")
    return statements


async def persist(
    write: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int | None = None,
    first_delay: float = 0.05,
    max_delay: float = 5.0,
) -> T:
    """Run a database write, retrying with backoff while the database fails
    (locked past the busy timeout, disk full): until it succeeds, or for at
    most ``attempts`` tries, after which the last error is raised."""
    delay, tried = first_delay, 0
    while True:
        try:
            result = await write()
        except sqlite3.Error as exc:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            if tried == 1 or tried % 10 == 0:
                _log.warning("db_write_failed", what=what, tries=tried, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        if tried:
            _log.info("db_write_done", what=what, tries=tried + 1)
        return result
