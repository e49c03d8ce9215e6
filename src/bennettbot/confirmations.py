"""Confirmations: a job with ``confirm = true`` asks before it is queued.

The question is an ordinary message in the asking thread with Run and Cancel
buttons. Pressing one decides it, once: the store moves a confirmation out
of ``pending`` by compare-and-set, so a second press (or a press in another
bot process) changes nothing. Only someone who may run the command may
press. After ``EXPIRES_AFTER`` the buttons go and the message says so.
Confirmations live in the store, so a restart between the question and the
press loses nothing. Independent of Slack: the listeners post and edit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from . import messages
from .jobconfig import CommandMatch, JobConfig
from .jobqueue import JobQueue, SchedulingError
from .models import Clock, Confirmation, Requester
from .store import Store

log = structlog.get_logger("confirmations")

EXPIRES_AFTER = timedelta(minutes=10)
RUN, CANCEL = "confirm_run", "confirm_cancel"  # the buttons' action ids


@dataclass(frozen=True, slots=True)
class Question:
    """The message that asks: its text and Block Kit blocks."""

    confirmation_id: int
    text: str
    blocks: list[dict]


@dataclass(frozen=True, slots=True)
class PressResult:
    """What a press does: a new text for the question (its buttons gone),
    or a note for the presser alone (``ephemeral``), or both, or neither."""

    text: str = ""
    ephemeral: str = ""


class Confirmations:
    def __init__(
        self,
        store: Store,
        queue: JobQueue,
        config: JobConfig,
        clock: Clock,
        bot_name: str = "",
    ) -> None:
        self._store, self._queue, self._config = store, queue, config
        self._clock, self._bot_name = clock, bot_name
        self.changed = asyncio.Event()  # set: look at the expiries again

    def wake(self) -> None:
        """Look at the expiries now (a question was asked, the clock moved)."""
        self.changed.set()

    def needed(self, match: CommandMatch) -> bool:
        job = match.namespace.jobs.get(match.command.job_type)
        return (
            match.command.action == "schedule_job" and job is not None and job.confirm
        )

    async def ask(self, match: CommandMatch, requester: Requester) -> Question:
        job_type = f"{match.namespace.name}_{match.command.job_type}"
        confirmation_id = await self._store.add_confirmation(
            job_type,
            match.args,
            requester,
            match.command.delay_seconds,
            self._clock.now(),
        )
        text = messages.confirm_question(job_type, match.args)
        return Question(
            confirmation_id,
            text,
            [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {
                    "type": "actions",
                    "block_id": f"confirm-{confirmation_id}",
                    "elements": [
                        _button("Run", RUN, confirmation_id, "primary"),
                        _button("Cancel", CANCEL, confirmation_id, "danger"),
                    ],
                },
            ],
        )

    async def asked(self, confirmation_id: int, channel: str, ts: str) -> None:
        """Where the question was posted (for its expiry)."""
        await self._store.set_confirmation_message(confirmation_id, channel, ts)
        self.wake()

    async def press(
        self, confirmation_id: int, action: str, user: str, is_guest: bool
    ) -> PressResult:
        """``user`` pressed Run or Cancel on confirmation ``confirmation_id``."""
        found = await self._store.find_confirmation(confirmation_id)
        if found is None:
            return PressResult(ephemeral=messages.CONFIRMATION_GONE)
        namespace = self._config.namespaces.get(found.job_type.partition("_")[0])
        if namespace is not None and namespace.restricted and is_guest:
            return PressResult(ephemeral=messages.restricted(namespace.name))
        state = "confirmed" if action == RUN else "cancelled"
        now = self._clock.now()
        decided = await self._store.decide_confirmation(
            confirmation_id, state, user, asked_after=now - EXPIRES_AFTER
        )
        if decided is None:  # decided already, or too late
            return await self._not_pending(confirmation_id)
        log.info("confirmation_decided", id=confirmation_id, state=state, by=user)
        if state == "cancelled":
            return PressResult(messages.confirm_cancelled(decided, user))
        try:
            result = await self._queue.schedule_job(
                decided.job_type,
                decided.args,
                decided.requester,
                decided.delay_seconds,
            )
        except SchedulingError as exc:  # e.g. the job left the config
            return PressResult(messages.confirm_failed(decided, user, str(exc)))
        return PressResult(messages.confirmed(decided, user, result, self._bot_name))

    async def _not_pending(self, confirmation_id: int) -> PressResult:
        found = await self._store.find_confirmation(confirmation_id)
        if found is not None and found.state == "pending":  # past its time
            expired = await self.expire_due()
            text = next(
                (e.text for e in expired if e.confirmation.id == confirmation_id), ""
            )
            return PressResult(text, messages.CONFIRMATION_EXPIRED)
        return PressResult(ephemeral=messages.confirmation_decided(found))

    async def expire_due(self) -> list[Expired]:
        """Mark the questions past their time expired; what to edit."""
        before = self._clock.now() - EXPIRES_AFTER
        return [
            Expired(found, messages.confirm_expired(found))
            for found in await self._store.expire_confirmations(before)
        ]

    async def next_expiry(self) -> datetime | None:
        oldest = await self._store.oldest_pending_confirmation()
        return None if oldest is None else oldest + EXPIRES_AFTER


@dataclass(frozen=True, slots=True)
class Expired:
    confirmation: Confirmation
    text: str  # the question's new text (no buttons)


def _button(label: str, action: str, confirmation_id: int, style: str) -> dict:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action,
        "value": str(confirmation_id),
        "style": style,
    }
