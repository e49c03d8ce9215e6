"""A local demo in the terminal: type commands, watch jobs run. No Slack needed.

Everything (database, logs, fetched scripts) lives in a temporary folder that
is removed at exit; the shipped job configuration and workspace are used.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from . import commands
from .app import Engine, open_engine
from .models import QueuedJob, Requester
from .notifier import Report
from .settings import Settings, load_settings

PROMPT = "you> "


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
                text = commands.clean(line)
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


async def _answer(engine: Engine, text: str, message_id: str) -> str:
    if not text:
        return ""
    requester = Requester(user="you", channel="demo", thread_ts=message_id)
    reply = await engine.responder.respond(text, requester)
    if reply.accepted and not reply.text:
        return f"(accepted: message {message_id} gets a :white_check_mark:)"
    return reply.text
