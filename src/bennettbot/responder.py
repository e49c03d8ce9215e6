"""What the bot answers to a command: the conversation, independent of Slack.

The Slack listeners and the terminal demo both hand a cleaned command text
to ``Responder.respond`` and deliver the ``Reply``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import commands, home, logview, messages
from .confirmations import Confirmations
from .jobconfig import JobConfig
from .jobqueue import JobQueue, SchedulingError
from .models import Clock, Requester
from .store import Store

HISTORY_LENGTH = 10  # runs listed by `history`
NameLookup = Callable[[Collection[str]], Awaitable[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class ReplyFile:
    """A file to upload in the thread, ``text`` being its comment."""

    name: str
    content: str


@dataclass(frozen=True, slots=True)
class Reply:
    """``text`` to post in the thread ("" for none); ``accepted``: react to the
    message to say a job command was taken; ``file``: upload it, with
    ``text`` as its comment."""

    text: str = ""
    accepted: bool = False
    file: ReplyFile | None = None
    blocks: list[dict] | None = None  # Block Kit, with ``text`` as fallback
    confirmation: int | None = None  # the question of this confirmation


class Responder:
    def __init__(
        self,
        config: JobConfig,
        queue: JobQueue,
        store: Store,
        clock: Clock,
        bot_name: str = "",
        *,
        logs_dir: Path = Path("logs"),
        host_logs_dir: str = "",
        confirmations: Confirmations | None = None,
    ) -> None:
        self._confirmations = confirmations
        self._config = config
        self._queue = queue
        self._store = store
        self._clock = clock
        self._bot_name = bot_name
        self._logs_dir = logs_dir
        self._host_logs_dir = host_logs_dir or str(logs_dir)

    async def respond(
        self,
        text: str,
        requester: Requester,
        *,
        is_guest: bool | Callable[[], Awaitable[bool]] = False,
        names: NameLookup | None = None,
        workspace_url: str = "",
    ) -> Reply:
        """Answer cleaned command ``text`` from ``requester``.

        ``is_guest`` may be a coroutine function: it is then asked only when a
        restricted command needs the answer. ``names`` gives people's names
        (``history`` shows them), ``workspace_url`` links to threads.
        """
        command = commands.parse(text, self._config)
        match command:
            case (
                commands.Status()
                | commands.RemoveJob()
                | commands.StopJob()
                | commands.Run()
            ):
                return await self._queue_command(command, requester, is_guest)
            case commands.History(of):
                return Reply(await self._history(of, names, workspace_url))
            case commands.ShowLogsUsage():
                return Reply(messages.showlogs_usage(self._bot_name))
            case commands.ShowLogs() as asked:
                if await _ask(is_guest):
                    return Reply(messages.MEMBERS_ONLY_LOGS)
                return await self._show_logs(asked)
            case commands.Help():
                return Reply(self._help(command))
            case (
                commands.OutOfOfficeOn()
                | commands.OutOfOfficeOff()
                | commands.OutOfOfficeStatus()
                | commands.BadDates()
            ):
                # built in, but the namespace's: its `restricted` holds
                namespace = self._restricted("techsupport_")
                if namespace and await _ask(is_guest):
                    return Reply(messages.restricted(namespace))
                return Reply(await self._out_of_office(command))
            case _:
                return Reply(messages.apology(self._config.namespaces, self._bot_name))

    async def _queue_command(
        self,
        command: commands.Status | commands.RemoveJob | commands.StopJob | commands.Run,
        requester: Requester,
        is_guest: bool | Callable[[], Awaitable[bool]],
    ) -> Reply:
        match command:
            case commands.Status():
                restricted = self._config.restricted_namespaces()
                hidden = restricted if restricted and await _ask(is_guest) else ()
                status = await self._queue.status()
                return Reply(messages.status(status, args_hidden_for=hidden))
            case commands.RemoveJob(job_id) | commands.StopJob(job_id):
                job = await self._store.find_job(job_id)
                namespace = self._restricted(job.type) if job else ""
                if namespace and await _ask(is_guest):
                    return Reply(messages.restricted(namespace))
                if isinstance(command, commands.StopJob):
                    asked = await self._queue.stop_job(job_id, requester)
                    return Reply(messages.stop_asked(asked, self._bot_name))
                removed = await self._queue.remove_job(job_id)
                return Reply(messages.job_removed(removed, self._bot_name))
            case commands.Run(found):
                if found.namespace.restricted and await _ask(is_guest):
                    return Reply(messages.restricted(found.namespace.name))
                asks = self._confirmations
                if asks is not None and asks.needed(found):
                    question = await asks.ask(found, requester)
                    return Reply(
                        question.text,
                        blocks=question.blocks,
                        confirmation=question.confirmation_id,
                    )
                try:
                    answer = await self._queue.perform(found, requester)
                except SchedulingError as exc:
                    return Reply(str(exc))
                reply = messages.queue_answer(answer, self._bot_name)
                return Reply(reply, accepted=True)

    async def _history(
        self, of: str | None, names: NameLookup | None, workspace_url: str
    ) -> str:
        """The last runs: of everything, of a namespace, or of a job type."""
        if of is None:
            runs = await self._store.runs(HISTORY_LENGTH)
        elif (namespace := self._config.namespaces.get(of)) is not None:
            types = [f"{of}_{job}" for job in namespace.jobs]
            runs = await self._store.runs_of(types, HISTORY_LENGTH)
        else:
            runs = await self._store.runs_of([of], HISTORY_LENGTH)
        users = {run.requester.user for run in runs if run.requester.user}
        known = await names(users) if names is not None and users else {}
        return messages.history(
            runs,
            of,
            self._clock.now(),
            names=known,
            workspace_url=workspace_url,
            bot_name=self._bot_name,
        )

    async def home(
        self,
        *,
        is_guest: bool | Callable[[], Awaitable[bool]] = False,
        names: NameLookup | None = None,
    ) -> dict:
        """The Home tab's view for one person (``home``)."""
        restricted = self._config.restricted_namespaces()
        hidden = restricted if restricted and await _ask(is_guest) else frozenset()
        status = await self._queue.status()
        runs = await self._store.runs(home.LAST_RUNS)
        users = {j.requester.user for j in status.jobs if j.requester.user}
        known = await names(users) if names is not None and users else {}
        return home.view(status, runs, hidden_for=hidden, names=known)

    def _help(self, asked: commands.Help) -> str:
        namespaces = self._config.namespaces
        if not asked.known:
            return messages.apology(namespaces, self._bot_name)
        if asked.namespace is None:
            return messages.general_help(namespaces, self._bot_name)
        return messages.namespace_help(namespaces[asked.namespace], self._bot_name)

    async def _out_of_office(
        self,
        command: commands.OutOfOfficeOn
        | commands.OutOfOfficeOff
        | commands.OutOfOfficeStatus
        | commands.BadDates,
    ) -> str:
        today = self._clock.now().date()
        match command:
            case commands.OutOfOfficeOn(start, end):
                if start > end or end < today:
                    return messages.OOO_BAD_PERIOD
                await self._store.set_out_of_office(start, end)
                return messages.ooo_set(start, end)
            case commands.OutOfOfficeOff():
                await self._store.clear_out_of_office()
                return messages.OOO_OFF
            case commands.OutOfOfficeStatus():
                return messages.ooo_status(await self._store.out_of_office(), today)
            case commands.BadDates():
                return messages.OOO_BAD_DATES

    async def _show_logs(self, asked: commands.ShowLogs) -> Reply:
        run_dir = asked.run
        if run_dir.isdigit():
            found = await self._store.run_log_dir(int(run_dir))
            if not found:
                return Reply(messages.unknown_run(int(run_dir)))
            run_dir = found
        try:
            path = await asyncio.to_thread(
                logview.log_file,
                self._logs_dir,
                self._host_logs_dir,
                run_dir,
                asked.stream,
            )
            where = f"{path.parent.relative_to(self._logs_dir.resolve())}/{path.name}"
            if asked.part == "all":
                content, cut = await asyncio.to_thread(logview.whole, path)
                note = messages.log_file_note(where, cut, logview.ALL_MAX_BYTES)
                name = where.replace("/", "_") + ".txt"
                return Reply(note, file=ReplyFile(name, content))
            read = logview.head if asked.part == "head" else logview.tail
            text = await asyncio.to_thread(read, path)
        except logview.LogError as exc:
            return Reply(str(exc))
        except OSError as exc:
            return Reply(f"Sorry, I could not read that log ({exc.strerror}).")
        return Reply(messages.log_excerpt(where, asked.part, messages.no_pings(text)))

    def _restricted(self, job_type: str) -> str:
        """The namespace of ``job_type`` if it is restricted, else ""."""
        name = job_type.partition("_")[0]
        namespace = self._config.namespaces.get(name)
        return name if namespace is not None and namespace.restricted else ""


async def _ask(answer: bool | Callable[[], Awaitable[bool]]) -> bool:
    return await answer() if callable(answer) else answer
