"""A local demo in the terminal: type commands, watch jobs run. No Slack needed.

Everything (database, logs, fetched scripts) lives in a temporary folder that
is removed at exit; the shipped job configuration and workspace are used.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from . import messages
from .app import open_engine
from .models import QueuedJob, Requester
from .notifier import Report
from .scheduler import SchedulingError
from .settings import Settings, load_settings

PROMPT = "you> "
_REMOVE = re.compile(r"remove job id (\d+)", re.IGNORECASE)


class ConsoleNotifier:
    """Prints what the bot would post in Slack."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def _print(self, text: str) -> None:
        self._out.write(f"\n{text}\n{PROMPT}")
        self._out.flush()

    async def notify_logs(self, text: str) -> None:
        self._print(f"[#logs] {text}")

    async def report(self, job: QueuedJob, report: Report) -> None:
        body = report.content.rstrip("\n")
        if report.format in ("code", "file"):
            body = f"```\n{body}\n```"
        self._print(f"[reply to message {job.requester.thread_ts}] {body}")

    async def report_failure(self, job: QueuedJob, text: str) -> None:
        self._print(f"[reply to message {job.requester.thread_ts}] {text}")


async def _lines(stream: TextIO):
    """Read lines without blocking the loop (pipes and terminals)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    while line := await reader.readline():
        yield line.decode("utf-8", "replace")


async def run_demo(
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    settings: Settings | None = None,
) -> int:
    with tempfile.TemporaryDirectory(prefix="bennettbot-demo-") as tmp:
        base = settings or load_settings(["dispatcher"], require=False)
        settings = base.model_copy(
            update={
                "DB_PATH": Path(tmp) / "demo.db",
                "LOGS_DIR": Path(tmp) / "logs",
                "HOST_LOGS_DIR": "",
                "FAB_WORKSPACE_DIR": Path(tmp) / "workspace-data",
                "SLACK_APP_USERNAME": "",
            }
        )
        async with open_engine(settings, notifier=ConsoleNotifier(stdout)) as engine:
            dispatcher = asyncio.create_task(engine.dispatcher.run())
            stdout.write(
                "bennettbot local demo (no Slack). Type what you would write after "
                "@bennettbot,\ne.g. `test hello Bob`, `test read poem`, "
                "`test bad job`, `status`, `help`; `quit` to leave.\n" + PROMPT
            )
            stdout.flush()
            number = 0
            async for line in _lines(stdin):
                text = " ".join(line.split()).removesuffix(".").strip()
                if text.lower() in ("quit", "exit"):
                    break
                number += 1
                reply = await _answer(engine, text, str(number))
                stdout.write((f"bot> {reply}\n" if reply else "") + PROMPT)
                stdout.flush()
            await engine.dispatcher.stop(grace=5)
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)
    stdout.write("\nbye\n")
    return 0


async def _answer(engine, text: str, message_id: str) -> str:
    config, scheduler = engine.config, engine.scheduler
    if not text:
        return ""
    words = text.lower().split()
    if words == ["status"]:
        return await scheduler.status()
    if found := _REMOVE.fullmatch(text):
        return await scheduler.remove_job(int(found[1]))
    if words[0] == "help" or words[-1] == "help":
        name = words[1] if words[0] == "help" and len(words) == 2 else words[0]
        if len(words) == 2 and name in config.namespaces:
            return messages.namespace_help(config.namespaces[name], "")
        return messages.general_help(config.namespaces, "")
    match = config.match(text)
    if match is None:
        return "Sorry, I didn't understand that.\n" + messages.general_help(
            config.namespaces, ""
        )
    requester = Requester(user="you", channel="demo", thread_ts=message_id)
    try:
        reply = await scheduler.perform(match, requester)
    except SchedulingError as exc:
        return str(exc)
    return reply or f"(accepted: message {message_id} gets a :white_check_mark:)"
