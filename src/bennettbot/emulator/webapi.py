"""The Slack Web API methods the bot uses, at `/api/METHOD`, plus the file
upload URL (`/upload/v1/ID`) that `files.getUploadURLExternal` hands out.

Arguments come from the query string, a form body or a JSON body, as slack_sdk
sends them; the token from `Authorization: Bearer …` (or a `token` argument).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .state import JSON, Channel, Ephemeral, File, Message

if TYPE_CHECKING:
    from .server import SlackEmulator

UPLOAD = "upload_url"  # the name under which uploads are recorded in `calls`
_TS = re.compile(r"^\d+\.\d+$")
_EMOJI = re.compile(r"^[a-z0-9_+'\-]+(::skin-tone-[2-6])?$")
_BLOCK_TYPES = {
    "actions", "context", "divider", "file", "header", "image", "input",
    "markdown", "rich_text", "section", "table", "video",
}  # fmt: skip


@dataclass
class Call:
    """One Web API request as the emulator saw it."""

    method: str
    params: JSON
    token: str | None
    at: float  # time.perf_counter()
    status: int = 200
    response: JSON | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response["ok"])


@dataclass
class Fault:
    status: int
    retry_after: int | None
    error: str | None


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Params:
    def __init__(self, values: JSON) -> None:
        self.values = values

    def opt(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None or value == "" else str(value)

    def req(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.opt(name)
        if value is None:
            raise SlackError(error)
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        return value is True or str(value).lower() in ("1", "true")

    def integer(self, name: str, default: int) -> int:
        value = self.opt(name)
        try:
            return default if value is None else int(value)
        except ValueError:
            raise SlackError("invalid_arguments") from None


def parse_blocks(value: Any) -> list[JSON] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if not isinstance(value, list):
        raise SlackError("invalid_blocks_format")
    if len(value) > 50:
        raise SlackError("invalid_blocks")
    for block in value:
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            raise SlackError("invalid_blocks")
        if block["type"] == "section":
            text = block.get("text")
            if not (isinstance(text, dict) or block.get("fields")):
                raise SlackError("invalid_blocks")
            if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
                raise SlackError("invalid_blocks")
    return value


def _page(items: list[Any], p: Params, default_limit: int) -> tuple[list[Any], JSON]:
    """Cursor pagination as Slack does it: an opaque `next_cursor`, "" at the end."""
    limit = p.integer("limit", 0) or default_limit or len(items) or 1
    start = 0
    if cursor := p.opt("cursor"):
        try:
            start = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
        except (ValueError, binascii.Error):
            raise SlackError("invalid_cursor") from None
    end = start + limit
    nxt = ""
    if end < len(items):
        nxt = base64.b64encode(f"offset:{end}".encode()).decode()
    return items[start:end], {"next_cursor": nxt}


Handler = Callable[[Params], Awaitable[JSON]]


class WebApi:
    def __init__(self, emulator: SlackEmulator) -> None:
        self.em = emulator
        self.ws = emulator.workspace
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._uploads: dict[str, str] = {}  # upload id -> file id
        self.methods: dict[str, tuple[Handler, str]] = {
            "auth.test": (self.auth_test, "bot"),
            "apps.connections.open": (self.apps_connections_open, "app"),
            "conversations.list": (self.conversations_list, "bot"),
            "conversations.members": (self.conversations_members, "bot"),
            "conversations.join": (self.conversations_join, "bot"),
            "conversations.info": (self.conversations_info, "bot"),
            "conversations.history": (self.conversations_history, "bot"),
            "conversations.replies": (self.conversations_replies, "bot"),
            "users.info": (self.users_info, "bot"),
            "users.list": (self.users_list, "bot"),
            "chat.postMessage": (self.chat_post_message, "bot"),
            "chat.update": (self.chat_update, "bot"),
            "chat.postEphemeral": (self.chat_post_ephemeral, "bot"),
            "views.publish": (self.views_publish, "bot"),
            "chat.getPermalink": (self.chat_get_permalink, "bot"),
            "reactions.add": (self.reactions_add, "bot"),
            "files.getUploadURLExternal": (self.files_get_upload_url, "bot"),
            "files.completeUploadExternal": (self.files_complete_upload, "bot"),
            "files.upload": (self.files_upload, "bot"),
        }

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.dispatch)
        app.router.add_post("/upload/v1/{upload_id}", self.upload)

    def fail_next(
        self, method: str, status: int, retry_after: int | None, error: str | None
    ) -> None:
        self._faults[method].append(Fault(status, retry_after, error))

    def _fault(self, method: str, call: Call) -> web.Response | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue.popleft()
        headers = {}
        if fault.status == 429:
            headers["Retry-After"] = str(fault.retry_after or 0)
        default = {429: "ratelimited", 200: "fatal_error"}.get(
            fault.status, "internal_error"
        )
        call.status = fault.status
        call.response = {"ok": False, "error": fault.error or default}
        return web.json_response(call.response, status=fault.status, headers=headers)

    # plumbing

    async def _params(self, request: web.Request) -> JSON:
        values: JSON = dict(request.query)
        if request.method != "POST" or not request.body_exists:
            return values
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_json") from None
            if isinstance(body, dict):
                values.update(body)
        elif request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
        return values

    def _check_token(self, token: str | None, kind: str) -> None:
        if not token:
            raise SlackError("not_authed")
        known = {self.em.bot_token: "bot", self.em.app_token: "app"}
        if token not in known:
            raise SlackError("invalid_auth")
        if known[token] != kind:
            raise SlackError("not_allowed_token_type")

    async def dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = Call(method, {}, None, time.perf_counter())
        self.em.calls.append(call)
        try:
            call.params = await self._params(request)
            header = request.headers.get("Authorization", "")
            call.token = header.removeprefix("Bearer ").strip() or None
            if "token" in call.params:
                call.token = call.token or str(call.params.pop("token"))
            if (faulty := self._fault(method, call)) is not None:
                self.em.changed()
                return faulty
            if method not in self.methods:
                raise SlackError("unknown_method")
            handler, kind = self.methods[method]
            self._check_token(call.token, kind)
            call.response = {"ok": True} | await handler(Params(call.params))
        except SlackError as e:
            call.response = {"ok": False, "error": e.error}
        self.em.changed()
        return web.json_response(call.response)

    def _channel_by_id(self, p: Params, name: str = "channel") -> Channel:
        channel = self.ws.channels.get(p.opt(name) or "")
        if channel is None or not self.ws.visible_to_bot(channel):
            raise SlackError("channel_not_found")
        return channel

    def _writable(self, ref: str | None) -> Channel:
        """Where the bot may post: an id, a name (`#x` or `x`) or a user id."""
        user = self.ws.users.get(ref or "")
        if user is not None and not user.is_bot:
            return self.ws.dm_with(user.id)
        channel = self.ws.find_channel(ref or "")
        if channel is None or not self.ws.visible_to_bot(channel):
            raise SlackError("channel_not_found")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.ws.bot.id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _message(self, channel: Channel, ts: str | None) -> Message:
        message = self.ws.find_message(channel.id, ts or "")
        if message is None:
            raise SlackError("message_not_found")
        return message

    def _thread_ts(self, p: Params) -> str | None:
        thread_ts = p.opt("thread_ts")
        if thread_ts is not None and not _TS.match(thread_ts):
            raise SlackError("invalid_thread_ts")
        return thread_ts

    # methods

    async def auth_test(self, p: Params) -> JSON:
        bot = self.ws.bot
        return {
            "url": f"https://{self.ws.domain}.slack.com/",
            "team": self.ws.team_name,
            "user": bot.name,
            "team_id": self.ws.team_id,
            "user_id": bot.id,
            "bot_id": bot.bot_id,
            "is_enterprise_install": False,
        }

    async def apps_connections_open(self, p: Params) -> JSON:
        ticket = self.em.socket.issue_ticket()
        host = self.em.url.removeprefix("http://")
        return {"url": f"ws://{host}/link/?ticket={ticket}&app_id={self.ws.app_id}"}

    async def conversations_list(self, p: Params) -> JSON:
        types = set((p.opt("types") or "public_channel").split(","))
        wanted = []
        for c in self.ws.channels.values():
            if p.flag("exclude_archived") and c.is_archived:
                continue
            kind = (
                "im"
                if c.is_im
                else "private_channel"
                if c.is_private
                else ("public_channel")
            )
            if kind in types and self.ws.visible_to_bot(c):
                wanted.append(self.ws.channel_payload(c))
        page, meta = _page(wanted, p, 100)
        return {"channels": page, "response_metadata": meta}

    async def conversations_members(self, p: Params) -> JSON:
        channel = self._channel_by_id(p)
        members = [u for u in self.ws.users if u in channel.members]
        page, meta = _page(members, p, 100)
        return {"members": page, "response_metadata": meta}

    async def conversations_join(self, p: Params) -> JSON:
        channel = self._channel_by_id(p)
        if channel.is_im or channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        result: JSON = {}
        if self.ws.bot.id in channel.members:
            result["warning"] = "already_in_channel"
            result["response_metadata"] = {"warnings": ["already_in_channel"]}
        channel.members.add(self.ws.bot.id)
        return {"channel": self.ws.channel_payload(channel)} | result

    async def conversations_info(self, p: Params) -> JSON:
        return {"channel": self.ws.channel_payload(self._channel_by_id(p))}

    async def conversations_history(self, p: Params) -> JSON:
        channel = self._channel_by_id(p)
        if self.ws.bot.id not in channel.members:
            raise SlackError("not_in_channel")
        top = [m for m in self.ws.messages[channel.id] if not m.is_reply][::-1]
        page, meta = _page([self.ws.message_payload(m) for m in top], p, 100)
        return {"messages": page, "has_more": bool(meta["next_cursor"])} | {
            "response_metadata": meta
        }

    async def conversations_replies(self, p: Params) -> JSON:
        channel = self._channel_by_id(p)
        thread = self.ws.thread(channel.id, p.req("ts", "thread_not_found"))
        if not thread:
            raise SlackError("thread_not_found")
        page, meta = _page([self.ws.message_payload(m) for m in thread], p, 1000)
        return {"messages": page, "has_more": bool(meta["next_cursor"])} | {
            "response_metadata": meta
        }

    async def users_info(self, p: Params) -> JSON:
        user = self.ws.users.get(p.opt("user") or "")
        if user is None:
            raise SlackError("user_not_found")
        return {"user": self.ws.user_payload(user)}

    async def users_list(self, p: Params) -> JSON:
        users = [self.ws.user_payload(u) for u in self.ws.users.values()]
        page, meta = _page(users, p, 0)
        return {
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": meta,
        }

    async def chat_post_message(self, p: Params) -> JSON:
        channel = self._writable(p.opt("channel"))
        blocks = parse_blocks(p.values.get("blocks"))
        text = p.opt("text")
        if text is None and blocks is None and not p.values.get("attachments"):
            raise SlackError("no_text")
        bot = self.ws.bot
        message = Message(
            channel=channel.id,
            ts=self.ws.next_ts(),
            user=bot.id,
            text=text or "",
            blocks=blocks,
            thread_ts=self._thread_ts(p),
            bot_id=bot.bot_id,
            app_id=bot.app_id,
        )
        self.ws.add_message(message)
        await self.em.bot_message_added(message)
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": self.ws.message_payload(message),
        }

    async def chat_update(self, p: Params) -> JSON:
        channel = self._channel_by_id(p)
        message = self._message(channel, p.opt("ts"))
        if message.user != self.ws.bot.id:
            raise SlackError("cant_update_message")
        blocks = parse_blocks(p.values.get("blocks"))
        text = p.opt("text")
        if text is None and blocks is None:
            raise SlackError("no_text")
        await self.em.apply_edit(message, self.ws.bot.id, text or "", blocks)
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self.ws.message_payload(message),
        }

    async def chat_post_ephemeral(self, p: Params) -> JSON:
        """A message only ``user`` sees, in ``channel``; kept apart from the
        channel's history (``SlackEmulator.ephemerals``)."""
        channel = self._channel_by_id(p)
        user = self.ws.users.get(p.opt("user") or "")
        if user is None:
            raise SlackError("user_not_found")
        if user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        text = p.opt("text")
        if not text:
            raise SlackError("no_text")
        ts = self.ws.next_ts()
        self.em.ephemerals.append(Ephemeral(channel.id, user.id, text, ts))
        self.em.changed()
        return {"message_ts": ts}

    async def views_publish(self, p: Params) -> JSON:
        """Publish a user's Home tab (``SlackEmulator.home_views``)."""
        user = self.ws.users.get(p.opt("user_id") or "")
        if user is None:
            raise SlackError("user_not_found")
        view = p.values.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise SlackError("invalid_arguments") from None
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments")
        blocks = view.get("blocks") or []
        if not isinstance(blocks, list) or len(blocks) > 100:
            raise SlackError("invalid_blocks")
        self.em.home_views[user.id] = view
        self.em.changed()
        return {"view": {**view, "id": f"V{len(self.em.home_views):08d}"}}

    async def chat_get_permalink(self, p: Params) -> JSON:
        channel = self._channel_by_id(p)
        message = self._message(channel, p.opt("message_ts"))
        return {"channel": channel.id, "permalink": self.ws.permalink(message)}

    async def reactions_add(self, p: Params) -> JSON:
        if p.opt("channel") is None or p.opt("timestamp") is None:
            raise SlackError("no_item_specified")
        channel = self._channel_by_id(p)
        if not _TS.match(p.req("timestamp")):
            raise SlackError("bad_timestamp")
        message = self._message(channel, p.opt("timestamp"))
        name = p.req("name", "invalid_name")
        if not _EMOJI.match(name):
            raise SlackError("invalid_name")
        if not self.ws.add_reaction(message, name, self.ws.bot.id):
            raise SlackError("already_reacted")
        return {}

    async def files_get_upload_url(self, p: Params) -> JSON:
        name = p.req("filename")
        length = p.integer("length", -1)
        if length < 0:
            raise SlackError("invalid_arguments")
        file = File(
            id=self.ws.new_id("F"),
            name=name,
            length=length,
            user=self.ws.bot.id,
            alt_txt=p.opt("alt_txt"),
            snippet_type=p.opt("snippet_type"),
        )
        self.ws.files[file.id] = file
        upload_id = secrets.token_urlsafe(12)
        self._uploads[upload_id] = file.id
        return {
            "upload_url": f"{self.em.url}/upload/v1/{upload_id}",
            "file_id": file.id,
        }

    async def upload(self, request: web.Request) -> web.Response:
        upload_id = request.match_info["upload_id"]
        call = Call(UPLOAD, {"upload_id": upload_id}, None, time.perf_counter())
        self.em.calls.append(call)
        if (faulty := self._fault(UPLOAD, call)) is not None:
            self.em.changed()
            return faulty
        file = self.ws.files.get(self._uploads.get(upload_id, ""))
        if file is None:
            call.status = 404
            self.em.changed()
            return web.Response(status=404, text="not found")
        if request.content_type == "multipart/form-data":
            content = b""
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.filename is not None or part.name == "file":
                    content = await part.read()
                    break
        else:
            content = await request.read()
        file.content = content
        call.params["length"] = len(content)
        self.em.changed()
        return web.Response(text=f"OK - {len(content)}")

    async def files_complete_upload(self, p: Params) -> JSON:
        raw = p.values.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        files: list[File] = []
        for item in items:
            file_id = str(item.get("id")) if isinstance(item, dict) else ""
            file = self.ws.files.get(file_id)
            if file is None or file.content is None:
                raise SlackError("file_not_found")
            if item.get("title"):
                file.title = str(item["title"])
            files.append(file)
        targets = [p.opt("channel_id")] if p.opt("channel_id") else []
        targets += [c for c in (p.opt("channels") or "").split(",") if c]
        channels = [self._writable(ref) for ref in targets]
        thread_ts = self._thread_ts(p)
        bot = self.ws.bot
        for channel in channels:
            message = Message(
                channel=channel.id,
                ts=self.ws.next_ts(),
                user=bot.id,
                text=p.opt("initial_comment") or "",
                thread_ts=thread_ts,
                subtype="file_share",
                bot_id=bot.bot_id,
                app_id=bot.app_id,
                files=[f.id for f in files],
            )
            self.ws.add_message(message)
            for file in files:
                file.shares.append((channel.id, message.ts, message.thread_ts))
            await self.em.bot_message_added(message)
        return {"files": [self.ws.file_payload(f) for f in files]}

    async def files_upload(self, p: Params) -> JSON:
        raise SlackError("method_deprecated")
