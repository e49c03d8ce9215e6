"""``python -m bennettbot demo --web``: the demo's workspace as one web page.

The bot, the dispatcher and the Slack emulator run in this process, as in
the terminal demo; an aiohttp server on 127.0.0.1 serves the page (plain
HTML, CSS and JS from package data: no build step, nothing fetched from the
network), the workspace as JSON, and a stream of server-sent events that
tells the page when anything changed (a message, an edit, a reaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from .demo import demo_workspace
from .emulator import SlackEmulator
from .emulator.state import JSON, Message

PEOPLE = ("alice", "guest")  # who the page may post as
MAX_TEXT = 4000  # characters a person may post from the page
KEEPALIVE = 15.0  # seconds between the event stream's comments
SLACK = web.AppKey("slack", SlackEmulator)
_MENTION = re.compile(r"@bennettbot\b")


async def run_web_demo(port: int = 8765, out: TextIO = sys.stdout) -> int:
    """Serve the demo on ``127.0.0.1:port`` (0: any free port) until SIGINT or
    SIGTERM; print the page's URL on a line of its own once it is ready."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with demo_workspace() as (slack, _):
        runner = web.AppRunner(page_app(slack), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            bound = runner.addresses[0][1]
            out.write("bennettbot demo: open this page in a browser\n")
            out.write(f"http://127.0.0.1:{bound}/\n")
            out.flush()
            await stop.wait()
        finally:
            await runner.cleanup()
    return 0


def page_app(slack: SlackEmulator) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SLACK] = slack
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/events", _events)
    app.router.add_post("/api/say", _say)
    app.router.add_post("/api/press", _press)
    app.router.add_get("/files/{file_id}", _file)
    return app


_STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


def _asset(name: str) -> bytes:
    return resources.files("bennettbot").joinpath("webdemo").joinpath(name).read_bytes()


async def _page(request: web.Request) -> web.Response:
    return web.Response(body=_asset("index.html"), content_type="text/html")


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = Path(name).suffix
    if "/" in name or suffix not in _STATIC_TYPES or name.startswith("."):
        raise web.HTTPNotFound()
    try:
        body = _asset(name)
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    return web.Response(body=body, content_type=_STATIC_TYPES[suffix])


async def _state(request: web.Request) -> web.Response:
    viewer = request.query.get("as", "alice")
    if viewer not in PEOPLE:
        raise web.HTTPBadRequest(text="as: alice or guest")
    return web.json_response(snapshot(request.app[SLACK], viewer))


def snapshot(slack: SlackEmulator, viewer: str) -> JSON:
    """The workspace as ``viewer`` sees it: channels and DMs, each with its
    messages (threads nested), reactions, files and edits."""
    ws = slack.workspace
    person = ws.user(viewer)
    names = {user.id: user.name for user in ws.users.values()}
    channels = []
    for channel in ws.channels.values():
        if channel.is_im and channel.user != person.id:
            continue
        if (
            not channel.is_im
            and channel.is_private
            and person.id not in channel.members
        ):
            continue
        messages = ws.messages.get(channel.id, [])
        top = [m for m in messages if not m.is_reply]
        channels.append(
            {
                "id": channel.id,
                "name": "bennettbot (DM)" if channel.is_im else f"#{channel.name}",
                "is_im": channel.is_im,
                "messages": [
                    _message(m, names, ws.thread(channel.id, m.ts)[1:]) for m in top
                ],
                "ephemerals": [
                    {"ts": e.ts, "text": e.text}
                    for e in slack.ephemerals
                    if e.channel == channel.id and e.user == person.id
                ],
            }
        )
    return {"viewer": viewer, "users": names, "channels": channels}


def _message(message: Message, names: dict[str, str], replies: list[Message]) -> JSON:
    shown = {
        "ts": message.ts,
        "user": names.get(message.user or "", message.username or "someone"),
        "is_bot": bool(message.bot_id),
        "text": message.text,
        "blocks": message.blocks,
        "edited": message.edited is not None,
        "reactions": [
            {"name": name, "count": len(users)}
            for name, users in message.reactions.items()
            if users
        ],
        "files": list(message.files),
    }
    if replies:
        shown["replies"] = [_message(reply, names, []) for reply in replies]
    return shown


async def _events(request: web.Request) -> web.StreamResponse:
    """``changed`` whenever the workspace changes (server-sent events)."""
    slack = request.app[SLACK]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    seen = _version(slack)

    def changed() -> bool | None:
        return _version(slack) != seen or None

    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        await response.write(b"data: changed\n\n")
        while True:
            try:
                await slack.wait_for(changed, KEEPALIVE)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            seen = _version(slack)
            await response.write(b"data: changed\n\n")
    return response


def _version(slack: SlackEmulator) -> tuple[int, int, int]:
    messages = sum(len(m) for m in slack.workspace.messages.values())
    return len(slack.calls), messages, len(slack.ephemerals)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="a JSON object, please") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object, please")
    if body.get("as") not in PEOPLE:
        raise web.HTTPBadRequest(text="as: alice or guest")
    return body


async def _say(request: web.Request) -> web.Response:
    """Post as alice or the guest: ``{"as", "channel", "text", "thread_ts"?}``;
    ``@bennettbot`` becomes the bot's mention."""
    slack = request.app[SLACK]
    body = await _json(request)
    text, channel = body.get("text"), body.get("channel")
    thread_ts = body.get("thread_ts") or None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"text: 1 to {MAX_TEXT} characters")
    if not isinstance(channel, str) or slack.workspace.find_channel(channel) is None:
        raise web.HTTPBadRequest(text="channel: unknown")
    if thread_ts is not None and not isinstance(thread_ts, str):
        raise web.HTTPBadRequest(text="thread_ts: a message's ts")
    text = _MENTION.sub(f"<@{slack.bot.id}>", text.strip())
    try:
        posted = await slack.post(body["as"], channel, text, thread_ts=thread_ts)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"ts": posted.ts})


async def _press(request: web.Request) -> web.Response:
    """Press a button: ``{"as", "channel", "ts", "action_id"}``."""
    slack = request.app[SLACK]
    body = await _json(request)
    try:
        await slack.press(body["as"], body["channel"], body["ts"], body["action_id"])
    except (KeyError, ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"cannot press that: {exc}") from None
    return web.json_response({"ok": True})


async def _file(request: web.Request) -> web.Response:
    slack = request.app[SLACK]
    found = slack.workspace.files.get(request.match_info["file_id"])
    if found is None or found.content is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=found.content,
        content_type="text/plain",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{found.name}"'},
    )
