"""What the bot answers to a command: the conversation, independent of Slack.

The Slack listeners and the terminal demo both hand a cleaned command text
to ``Responder.respond`` and deliver the ``Reply``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import commands, messages
from .jobconfig import JobConfig
from .models import Clock, Requester
from .scheduler import Scheduler, SchedulingError
from .store import Store


@dataclass(frozen=True, slots=True)
class Reply:
    """``text`` to post in the thread ("" for none); ``accepted``: react to the
    message to say a job command was taken."""

    text: str = ""
    accepted: bool = False


class Responder:
    def __init__(
        self,
        config: JobConfig,
        scheduler: Scheduler,
        store: Store,
        clock: Clock,
        bot_name: str = "",
    ) -> None:
        self._config = config
        self._scheduler = scheduler
        self._store = store
        self._clock = clock
        self._bot_name = bot_name

    async def respond(
        self,
        text: str,
        requester: Requester,
        *,
        is_guest: bool | Callable[[], Awaitable[bool]] = False,
    ) -> Reply:
        """Answer cleaned command ``text`` from ``requester``.

        ``is_guest`` may be a coroutine function: it is then asked only when a
        restricted command needs the answer.
        """
        match commands.parse(text, self._config):
            case commands.Status():
                return Reply(await self._scheduler.status())
            case commands.RemoveJob(job_id):
                return Reply(await self._scheduler.remove_job(job_id))
            case commands.Help(None, known=False):
                return Reply(messages.apology(self._config.namespaces, self._bot_name))
            case commands.Help(None):
                return Reply(
                    messages.general_help(self._config.namespaces, self._bot_name)
                )
            case commands.Help(name):
                namespace = self._config.namespaces[name]
                return Reply(messages.namespace_help(namespace, self._bot_name))
            case commands.Run(found):
                if found.namespace.restricted and await _ask(is_guest):
                    return Reply(messages.restricted(found.namespace.name))
                try:
                    reply = await self._scheduler.perform(found, requester)
                except SchedulingError as exc:
                    return Reply(str(exc))
                return Reply(reply, accepted=True)
            case commands.OutOfOfficeOn(start, end):
                if start > end or end < self._clock.now().date():
                    return Reply(messages.OOO_BAD_PERIOD)
                await self._store.set_out_of_office(start, end)
                return Reply(messages.ooo_set(start, end))
            case commands.OutOfOfficeOff():
                await self._store.clear_out_of_office()
                return Reply(messages.OOO_OFF)
            case commands.OutOfOfficeStatus():
                period = await self._store.out_of_office()
                return Reply(messages.ooo_status(period, self._clock.now().date()))
            case commands.BadDates():
                return Reply(messages.OOO_BAD_DATES)
            case _:
                return Reply(messages.apology(self._config.namespaces, self._bot_name))


async def _ask(answer: bool | Callable[[], Awaitable[bool]]) -> bool:
    return await answer() if callable(answer) else answer
