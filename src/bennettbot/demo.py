"""``python -m bennettbot demo``: the whole bot against the built-in Slack
emulator, with a terminal prompt where you type as a team member.

The bot, the dispatcher and the emulator run in this process; the bot talks
to the emulator through slack_sdk exactly as it talks to Slack. Everything
(database, logs, fetched scripts) lives in a temporary folder removed at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import TextIO

from .app import Engine
from .emulator import Message, SlackEmulator
from .emulator.harness import emulator_settings, running_roles
from .emulator.webapi import Call
from .settings import load_settings

PROMPT = "you> "
_CHANNEL = re.compile(r"#([a-z0-9_-]+)\s+(.*)", re.DOTALL)
HELP = """\
bennettbot demo: a Slack workspace in this terminal (no Slack, no tokens).
You are @alice. Type a message and press Enter:
  @bennettbot test hello Bob      mention the bot in #general
  #random @bennettbot status      post in another channel (#general, #tech, #random)
  dm test read poem               a direct message to the bot
  @bennettbot history             the last runs (stop job id N stops a running one)
  is tech-support around?         a support request in #general
  guest @bennettbot showlogs …    post as @guest (restricted commands are refused)
  press Run / press Cancel        press a button of the bot's last question
  quit                            leave
"""


async def _lines(stream: TextIO) -> AsyncIterator[str]:
    """Read lines without blocking the loop (terminals and pipes)."""
    if stat.S_ISREG(os.fstat(stream.fileno()).st_mode):  # `demo < script.txt`
        while line := await asyncio.to_thread(stream.readline):
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    while raw := await reader.readline():
        yield raw.decode("utf-8", "replace")


def _where(slack: SlackEmulator, channel: str, thread_ts: str | None) -> str:
    found = slack.workspace.find_channel(channel)
    name = "DM" if found is None or found.is_im else f"#{found.name}"
    return f"{name}, in a thread" if thread_ts else name


def describe(slack: SlackEmulator, call: Call) -> str | None:
    """What the bot did, in one line, or None for calls a person would not see."""
    params, response = call.params, call.response or {}
    if not call.ok:
        return None
    match call.method:
        case "chat.postMessage":
            message = response.get("message", {})
            text = message.get("text") or params.get("text", "")
            if message.get("blocks") and not params.get("text"):
                text = "(blocks) " + str(message["blocks"])
            where = _where(slack, response.get("channel", ""), params.get("thread_ts"))
            return f"[{where}] bennettbot: {text.rstrip()}"
        case "chat.update":
            where = _where(slack, params.get("channel", ""), None)
            text = params.get("text", "").rstrip()
            return f"[{where}] bennettbot edited its message: {text}"
        case "chat.postEphemeral":
            where = _where(slack, params.get("channel", ""), None)
            text = params.get("text", "").rstrip()
            return f"[{where}, only you see this] bennettbot: {text}"
        case "reactions.add":
            where = _where(slack, params.get("channel", ""), None)
            return f"[{where}] bennettbot reacted :{params.get('name')}:"
        case "files.completeUploadExternal":
            where = _where(slack, params.get("channel_id", ""), params.get("thread_ts"))
            return f"[{where}] bennettbot shared a file: {params.get('files', '')}"
    return None


class _Watcher:
    """Prints what the bot does, as it happens."""

    def __init__(self, slack: SlackEmulator, out: TextIO) -> None:
        self._slack, self._out, self._seen = slack, out, 0

    def flush(self) -> None:
        for call in self._slack.calls[self._seen :]:
            if (line := describe(self._slack, call)) is not None:
                self._out.write(f"\n{line}\n{PROMPT}")
        self._seen = len(self._slack.calls)
        self._out.flush()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await self._slack.wait_for(
                    lambda: len(self._slack.calls) > self._seen or None, 3600
                )
            self.flush()


async def _settle(slack: SlackEmulator, engine: Engine, seconds: float) -> None:
    """Give work in flight (unacked events, queued or running jobs) a moment."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await slack.wait_for(
                lambda: all(e.ack for e in slack.envelopes) or None, seconds
            )
            while await engine.store.list_jobs():
                await engine.dispatcher.wait_idle(seconds)
                await asyncio.sleep(0.05)  # the bot may still be queueing


async def _press(slack: SlackEmulator, user: str, button: str) -> Message | None:
    """Press Run or Cancel on the newest message of the bot that has them;
    that message (None: no question to press)."""
    action = f"confirm_{button}"
    asking = [
        message
        for messages in slack.workspace.messages.values()
        for message in messages
        for block in message.blocks or []
        if any(e.get("action_id") == action for e in block.get("elements", []))
    ]
    if not asking:
        return None
    newest = max(asking, key=lambda message: float(message.ts))
    await slack.press(user, newest.channel, newest.ts, action)
    return newest


async def _say(slack: SlackEmulator, line: str) -> Callable[[], bool]:
    """Do what ``line`` says; a test of whether the bot has answered it."""
    text = line.strip()
    text = re.sub(r"@bennettbot\b", f"<@{slack.bot.id}>", text)
    user = "alice"
    if text.startswith("guest "):
        user, text = "guest", text.removeprefix("guest ")
    if text.lower() in ("press run", "press cancel"):
        pressed = await _press(slack, user, text.split()[1].lower())
        return lambda: pressed is None or pressed.edited is not None
    if text.startswith("dm "):
        message = await slack.dm(user, text.removeprefix("dm "))
    elif found := _CHANNEL.fullmatch(text):
        message = await slack.post(user, found[1], found[2])
    else:
        message = await slack.post(user, "general", text)
    return partial(_answered, slack, message)


async def _until(slack: SlackEmulator, answered: Callable[[], bool]) -> None:
    """Wait (15 s at most) until the bot has answered."""
    with contextlib.suppress(TimeoutError):
        await slack.wait_for(lambda: answered() or None, 15)


def _answered(slack: SlackEmulator, message: Message) -> bool:
    """Whether the bot has answered ``message``, or has nothing to answer."""
    addressed = (
        f"<@{slack.bot.id}>" in message.text
        or slack.workspace.channels[message.channel].is_im
        or "tech-support" in message.text.lower()
    )
    if not addressed:
        return True
    bot = slack.bot.id
    reacted = any(bot in users for users in message.reactions.values())
    return reacted or bool(slack.replies(message.channel, message.ts, user=bot))


@contextlib.asynccontextmanager
async def demo_workspace() -> AsyncIterator[tuple[SlackEmulator, Engine]]:
    """The emulator, and the bot and dispatcher roles connected to it, with
    their files in a temporary folder removed at exit."""
    with tempfile.TemporaryDirectory(prefix="bennettbot-demo-") as tmp:
        async with SlackEmulator() as slack:
            settings = load_settings(
                ["dispatcher"],
                require=False,
                **emulator_settings(slack, Path(tmp)),
                HOST_LOGS_DIR="",
            )
            async with running_roles(settings) as engine:
                yield slack, engine


async def run_demo(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    async with demo_workspace() as (slack, engine):
        watcher = _Watcher(slack, stdout)
        watching = asyncio.create_task(watcher.run())
        stdout.write(HELP + PROMPT)
        stdout.flush()
        scripted = stat.S_ISREG(os.fstat(stdin.fileno()).st_mode)
        async for line in _lines(stdin):
            if line.strip().lower() in ("quit", "exit"):
                break
            if line.strip():
                answered = await _say(slack, line)
                if scripted:  # `demo < script.txt`: one line at a time
                    await _until(slack, answered)
            else:
                stdout.write(PROMPT)
                stdout.flush()
        await _settle(slack, engine, 15)
    watching.cancel()  # the roles have stopped: say what they did last
    await asyncio.gather(watching, return_exceptions=True)
    watcher.flush()
    stdout.write("\nbye\n")
    return 0
