"""The web server: health check, GitHub deploy webhooks, signed job callbacks.

Request bodies are size-limited and read raw (signatures are over the exact
bytes); every error answer is a short text, never a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from aiohttp import web

from . import messages
from .jobconfig import JobConfig
from .models import Clock, Requester
from .scheduler import Scheduler
from .signing import verify_token
from .store import Store

log = structlog.get_logger("web")
GITHUB_MAX_BYTES = 1 << 20
CALLBACK_MAX_BYTES = 64 << 10
DEPLOY_DELAY_SECONDS = 60
DELIVERIES_KEPT = timedelta(days=7)

Post = Callable[[str, str, str], Awaitable[None]]  # channel, text, thread_ts
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class WebDeps:
    config: JobConfig
    scheduler: Scheduler
    store: Store
    clock: Clock
    post: Post
    github_secret: str
    callback_secret: str
    bot_name: str = ""


DEPS = web.AppKey("deps", WebDeps)
routes = web.RouteTableDef()


class BadRequest(Exception):
    """Answered with ``status`` and ``reason``; nothing else is said."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Short answers for errors, and one access-log line per request.

    The log has the path but never the query string: a callback's token is
    there.
    """
    started = time.perf_counter()
    try:
        response = await handler(request)
    except BadRequest as exc:
        response = web.Response(status=exc.status, text=exc.reason)
    except web.HTTPException as exc:
        response = exc
    except Exception:
        log.exception("request_failed", path=request.path)
        response = web.Response(status=500, text="internal error")
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 2),
        delivery=request.headers.get("X-GitHub-Delivery"),
    )
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(413, "request body too large")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(413, "request body too large")
    return body


def github_signature_ok(secret: str, body: bytes, headers: dict | object) -> bool:
    """``X-Hub-Signature-256`` (or, alone, ``X-Hub-Signature``), constant time."""
    get = headers.get  # type: ignore[attr-defined]
    if (signature := get("X-Hub-Signature-256")) is not None:
        prefix, algorithm = "sha256=", hashlib.sha256
    elif (signature := get("X-Hub-Signature")) is not None:
        prefix, algorithm = "sha1=", hashlib.sha1
    else:
        return False
    expected = prefix + hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


@routes.get("/check/")
async def check(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@routes.post("/github/{project}/")
async def github(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, GITHUB_MAX_BYTES)
    if not github_signature_ok(deps.github_secret, body, request.headers):
        raise BadRequest(403, "bad signature")
    project = request.match_info["project"]
    namespace = deps.config.namespaces.get(project)
    if namespace is None or "deploy" not in namespace.jobs:
        raise BadRequest(400, f"unknown project {project[:60]!r}")
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        return web.Response(text="pong")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(400, "malformed JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "malformed payload")
    pull = payload.get("pull_request")
    if event != "pull_request" or payload.get("action") != "closed":
        return web.Response(text="ignored")
    if not isinstance(pull, dict) or not pull.get("merged"):
        return web.Response(text="ignored: not merged")
    delivery = request.headers.get("X-GitHub-Delivery", "")
    now = deps.clock.now()
    if delivery and not await deps.store.first_delivery(delivery, now):
        return web.Response(text="already handled")
    channel = namespace.default_channel
    result = await deps.scheduler.schedule_job(
        f"{project}_deploy", {}, Requester(channel=channel), DEPLOY_DELAY_SECONDS
    )
    merged_by = (pull.get("merged_by") or {}).get("login", "someone")
    if result.suppressed_until is not None:
        text = messages.deploy_suppressed(
            project, result.suppressed_until, _cancel_command(namespace, deps.bot_name)
        )
    else:
        text = messages.deploy_scheduled(
            project,
            pull.get("number"),
            str(pull.get("title", "")),
            merged_by,
            result.start_after,
        )
    if channel:
        await deps.post(channel, text, "")
    log.info("deploy_scheduled", project=project, pr=pull.get("number"))
    return web.Response(text="deploy scheduled")


@routes.post("/callback/")
async def callback(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, CALLBACK_MAX_BYTES)
    token = request.query.get("token", "")
    now = deps.clock.now().timestamp()
    if not verify_token(deps.callback_secret, token, now):
        raise BadRequest(403, "bad or expired token")
    channel = request.query.get("channel", "")
    thread_ts = request.query.get("thread_ts", "")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(400, "malformed JSON") from None
    message = payload.get("message") if isinstance(payload, dict) else None
    if not channel or not isinstance(message, str) or not message:
        raise BadRequest(400, 'channel and a JSON {"message": …} are required')
    await deps.post(channel, message, thread_ts)
    return web.Response(text="posted")


def _cancel_command(namespace: object, bot_name: str) -> str:
    for command in getattr(namespace, "slack", ()):
        if command.action == "cancel_suppression" and command.job_type == "deploy":
            mention = f"@{bot_name} " if bot_name else ""
            return f"`{mention}{namespace.name} {command.command}`"  # type: ignore[attr-defined]
    return ""


def build_web_app(deps: WebDeps) -> web.Application:
    """The aiohttp application (no globals: its dependencies travel in ``DEPS``)."""
    app = web.Application(middlewares=[errors], client_max_size=GITHUB_MAX_BYTES)
    app[DEPS] = deps
    app.add_routes(routes)

    async def forget_old_deliveries(app: web.Application) -> None:
        await deps.store.forget_deliveries(deps.clock.now() - DELIVERIES_KEPT)

    app.on_startup.append(forget_old_deliveries)
    return app
