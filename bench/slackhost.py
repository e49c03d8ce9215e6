"""The Slack emulator in a process of its own, driven over stdin and stdout.

    python -m bench.slackhost

Prints one JSON line, ``{"api_url", "bot_token", "app_token"}``, once it
serves. Then, for each JSON line ``{"name": SCENARIO, "kwargs": {...}}`` on
stdin, runs that scenario of ``bench.slackscenarios`` in its loop and prints
``{"ok": true, "result": ...}`` (or ``{"ok": false, "error": TRACEBACK}``).
It stops at the end of stdin. Like the SSH server of ``bench.ssh``, a process
of its own: real Slack does not share the bot's CPU, or its GIL.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any

from .slackscenarios import SCENARIOS, new_emulator


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    slack = await new_emulator().start()
    try:
        say(
            {
                "api_url": slack.api_url,
                "bot_token": slack.bot_token,
                "app_token": slack.app_token,
            }
        )
        while line := await reader.readline():
            request = json.loads(line)
            try:
                scenario = SCENARIOS[request["name"]]
                result = await scenario(slack, **request.get("kwargs", {}))
            except Exception:
                say({"ok": False, "error": traceback.format_exc()})
            else:
                say({"ok": True, "result": result})
    finally:
        await slack.stop()


def main() -> int:
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
