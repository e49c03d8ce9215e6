"""The dispatcher lease: one active dispatcher per database.

dokku starts a deploy's new containers before it stops the old ones, so two
dispatchers share the database for a while. The one that holds the lease is
*active*: it starts jobs and records their runs. The other is a *standby*: it
runs nothing and touches no run until it gets the lease.

The contract, which any backend (SQLite here; PostgreSQL for several hosts
later) implements with ``LeaseBackend``:

1. ``claim(holder, now, until)`` is one atomic step. It succeeds when nobody
   holds the lease, when the holder's lease has lapsed (its ``until`` is at or
   before ``now``), or when ``holder`` already holds it; then ``holder`` holds
   it until ``until``. Otherwise it changes nothing. It says whether
   ``holder`` holds the lease afterwards.
2. ``release(holder)`` frees the lease if, and only if, ``holder`` holds it.
3. A holder renews well before its lease lapses (every ``ttl / 6``), and
   counts itself active only until the last successful claim's ``until`` by
   its own clock: when renewals fail for that long it starts nothing more.
4. Runs carry their holder. Whoever takes the lease records as interrupted
   every running run that is not its own: by 1 and 3, their holder is gone
   (dead, or past its lease), so no live run is reported as interrupted as
   long as clocks agree to within the lease's length.
5. A holder releases the lease only once its runs have ended and been
   recorded, so that a standby taking over finds nothing of its to recover.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from .models import Clock

log = structlog.get_logger("lease")

LEASE_SECONDS = 30.0


class LeaseBackend(Protocol):
    async def claim_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease until ``until`` (contract rule 1)."""

    async def release_lease(self, holder: str) -> None:
        """Free the lease if ``holder`` holds it (contract rule 2)."""

    async def lease_free(self, now: datetime) -> bool:
        """Nobody holds the lease, or its holder's has lapsed (a read only)."""


def new_holder_id() -> str:
    """Unique to this process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """This process's side of the lease (contract rule 3).

    ``keep()`` is called from the dispatcher's loop whenever it wakes: an
    active holder renews when a renewal is due; a standby looks (a read) and
    claims only when the lease is free, so it takes over as soon as it wakes
    after a release, and within ``STANDBY_LOOK`` s of a lapse.
    """

    STANDBY_LOOK = 1.0  # seconds between a standby's looks, at most

    def __init__(
        self,
        backend: LeaseBackend,
        clock: Clock,
        *,
        ttl: float = LEASE_SECONDS,
        holder: str | None = None,
    ) -> None:
        self.holder = holder or new_holder_id()
        self.ttl = ttl
        self.renew_every = ttl / 6
        self._backend = backend
        self._clock = clock
        self._valid_until: datetime | None = None
        self._last_claim: datetime | None = None
        self._failing = False

    def active(self) -> bool:
        """True while the last successful claim has not lapsed."""
        return self._valid_until is not None and self._clock.now() < self._valid_until

    def next_look_in(self) -> float:
        """Seconds until ``keep()`` has something to do, at the latest."""
        if not self.active() or self._last_claim is None:
            return self.STANDBY_LOOK
        elapsed = (self._clock.now() - self._last_claim).total_seconds()
        return max(0.0, self.renew_every - elapsed)

    async def keep(self) -> bool:
        """Renew, or look for and take, the lease as due; whether active."""
        try:
            if self.active():
                if self.next_look_in() <= 0:
                    await self._claim()
            elif await self._backend.lease_free(self._clock.now()):
                await self._claim()
            if self._failing:
                log.info("lease_store_back")
            self._failing = False
        except Exception as exc:  # the database: keep what we had until it lapses
            if not self._failing:
                log.warning("lease_store_failed", error=repr(exc))
            self._failing = True
        return self.active()

    async def _claim(self) -> None:
        now = self._clock.now()
        self._last_claim = now
        until = now + timedelta(seconds=self.ttl)
        if await self._backend.claim_lease(self.holder, now, until):
            self._valid_until = until
        else:
            self._valid_until = None

    async def release(self) -> None:
        """Give the lease up (contract rule 5: once our runs are recorded)."""
        self._valid_until = None
        await self._backend.release_lease(self.holder)
