"""The web server: health check, GitHub deploy webhooks, signed job callbacks.

Request bodies are read whole (signatures are over the exact bytes, however
the client's bytes were split), size-limited by what actually arrives, and
must arrive in time; every error answer is a short text, never a traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from . import messages
from .jobconfig import JobConfig, Namespace
from .jobqueue import JobQueue
from .metrics import CONTENT_TYPE, Metrics
from .models import Clock, Requester
from .signing import verify_token
from .store import Store

log = structlog.get_logger("web")
GITHUB_MAX_BYTES = 1 << 20
CALLBACK_MAX_BYTES = 64 << 10
CALLBACK_MAX_CHARS = 40_000  # Slack cuts message text past this
DEPLOY_DELAY_SECONDS = 60
DELIVERIES_KEPT = timedelta(days=7)
READ_TIMEOUT = 10.0  # seconds for a request's headers, and for its body
LINGER_SECONDS = 2.0  # unread body drained after an early answer, then closed

Post = Callable[[str, str, str], Awaitable[bool]]  # channel, text, thread_ts
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class WebDeps:
    config: JobConfig
    queue: JobQueue
    store: Store
    clock: Clock
    post: Post  # True once Slack accepted the message
    github_secret: str
    callback_secret: str
    bot_name: str = ""
    metrics: Metrics | None = None  # None: GET /metrics answers 404
    metrics_token: str = ""


DEPS = web.AppKey("deps", WebDeps)
READ_TIMEOUT_KEY = web.AppKey("read_timeout", float)
# Connections on which a request's headers have arrived (see `drop_slow`).
STARTED = web.AppKey("started", set)
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
    request.app[STARTED].add(request.protocol)
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
    metrics = request.app[DEPS].metrics
    if metrics is not None and (endpoint := _endpoint(request.path)):
        metrics.answered(endpoint, response.status)
    if isinstance(response, web.HTTPException):
        raise response
    return response


def _endpoint(path: str) -> str:
    """Which counted endpoint a path is ("" for none)."""
    if path.startswith("/github/"):
        return "github"
    return "callback" if path == "/callback/" else ""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however it was split on the wire; 413 past ``limit``
    bytes (counted as they arrive, chunked bodies too), 408 when it stalls."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(413, "request body too large")
    try:
        async with asyncio.timeout(request.app[READ_TIMEOUT_KEY]):
            # aiohttp refuses a body once it reaches client_max_size bytes
            return await request.clone(client_max_size=limit + 1).read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(413, "request body too large") from None
    except TimeoutError:
        raise BadRequest(408, "request body timed out") from None


def parse_json(body: bytes) -> object:
    """``body`` as JSON, or 400 (bad UTF-8, bad JSON, absurd nesting)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(400, "malformed JSON") from None


def github_signature_ok(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """``X-Hub-Signature-256`` (or, alone, ``X-Hub-Signature``), constant time."""
    if (signature := headers.get("X-Hub-Signature-256")) is not None:
        prefix, algorithm = "sha256=", hashlib.sha256
    elif (signature := headers.get("X-Hub-Signature")) is not None:
        prefix, algorithm = "sha1=", hashlib.sha1
    else:
        return False
    expected = prefix + hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class MergedPull:
    id: int
    number: int
    title: str
    merged_by: str


def merged_pull(event: str, payload: object) -> MergedPull | None:
    """The merged pull request this event announces, None for any other
    event; a payload of the wrong shape is a 400."""
    if not isinstance(payload, dict):
        raise BadRequest(400, "malformed payload: not an object")
    if event != "pull_request" or payload.get("action") != "closed":
        return None
    pull = payload.get("pull_request")
    if not isinstance(pull, dict) or not isinstance(pull.get("merged"), bool):
        raise BadRequest(400, "malformed payload: pull_request.merged")
    if not pull["merged"]:
        return None
    merged_by = pull.get("merged_by")
    login = merged_by.get("login") if isinstance(merged_by, dict) else None
    if (
        not _is_int(pull.get("id"))
        or not _is_int(pull.get("number"))
        or not isinstance(pull.get("title"), str)
        or not (merged_by is None or isinstance(login, str))
    ):
        raise BadRequest(400, "malformed payload: pull_request fields")
    return MergedPull(pull["id"], pull["number"], pull["title"], login or "someone")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@routes.get("/check/")
async def check(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics, for requests with ``Authorization: Bearer TOKEN``
    (``METRICS_TOKEN``); 404 when no token is set."""
    deps = request.app[DEPS]
    if deps.metrics is None or not deps.metrics_token:
        raise web.HTTPNotFound(text="not found")
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {deps.metrics_token}".encode()):
        raise web.HTTPUnauthorized(
            text="unauthorized", headers={"WWW-Authenticate": "Bearer"}
        )
    body = await deps.metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


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
    pull = merged_pull(event, parse_json(body))
    if pull is None:
        return web.Response(text="ignored")
    now = deps.clock.now()
    delivery = request.headers.get("X-GitHub-Delivery", "")
    if delivery and not await deps.store.first_delivery(delivery, now):
        return web.Response(text="already handled")
    # The same merge replayed under another (or no) delivery id: once only.
    merge = f"merge:{project}:{pull.id}"
    if not await deps.store.first_delivery(merge, now):
        return web.Response(text="already handled")
    channel = namespace.default_channel
    try:
        result = await deps.queue.schedule_job(
            f"{project}_deploy", {}, Requester(channel=channel), DEPLOY_DELAY_SECONDS
        )
    except BaseException:  # not queued: GitHub's redelivery must be able to
        await deps.store.forget_delivery(merge, delivery)
        raise
    if result.suppressed_until is not None:
        text = messages.deploy_suppressed(
            project, result.suppressed_until, _cancel_command(namespace, deps.bot_name)
        )
    else:
        text = messages.deploy_scheduled(
            project, pull.number, pull.title, pull.merged_by, result.start_after
        )
    if channel:
        await deps.post(channel, text, "")
    log.info("deploy_scheduled", project=project, pr=pull.number)
    return web.Response(text="deploy scheduled")


@routes.post("/callback/")
async def callback(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, CALLBACK_MAX_BYTES)
    channel = request.query.get("channel", "")
    thread_ts = request.query.get("thread_ts", "")
    if not channel:
        raise BadRequest(400, "channel is required")
    token = request.query.get("token", "")
    now = deps.clock.now().timestamp()
    if not verify_token(deps.callback_secret, token, channel, thread_ts, now):
        raise BadRequest(403, "bad or expired token")
    payload = parse_json(body)
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message.strip():
        raise BadRequest(400, 'a JSON {"message": "…"} is required')
    if len(message) > CALLBACK_MAX_CHARS:
        raise BadRequest(400, f"message longer than {CALLBACK_MAX_CHARS} characters")
    if not await deps.post(channel, messages.no_pings(message), thread_ts):
        raise BadRequest(502, "Slack did not accept the message")
    return web.Response(text="posted")


def _cancel_command(namespace: Namespace, bot_name: str) -> str:
    for command in namespace.slack:
        if command.action == "cancel_suppression" and command.job_type == "deploy":
            mention = f"@{bot_name} " if bot_name else ""
            return f"`{mention}{namespace.name} {command.command}`"
    return ""


def build_web_app(
    deps: WebDeps, *, read_timeout: float = READ_TIMEOUT
) -> web.Application:
    """The aiohttp application (no globals: its dependencies travel in ``DEPS``)."""
    app = web.Application(middlewares=[errors], client_max_size=GITHUB_MAX_BYTES)
    app[DEPS] = deps
    app[READ_TIMEOUT_KEY] = read_timeout
    app[STARTED] = set()
    app.add_routes(routes)

    async def forget_old_deliveries(app: web.Application) -> None:
        try:
            await deps.store.forget_deliveries(deps.clock.now() - DELIVERIES_KEPT)
        except sqlite3.Error as exc:  # tried again at the next start
            log.warning("forget_deliveries_failed", error=str(exc))

    app.on_startup.append(forget_old_deliveries)
    return app


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port``; yields the port (useful with port 0).

    Slow clients cannot hold the server: request headers must arrive within
    the app's read timeout (``drop_slow``), bodies likewise (``read_body``),
    and an idle kept-alive connection is closed after as long.
    """
    timeout = app[READ_TIMEOUT_KEY]
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=timeout, lingering_time=LINGER_SECONDS
    )
    await runner.setup()
    assert runner.server is not None
    sweeper = asyncio.create_task(drop_slow(runner.server, app[STARTED], timeout))
    try:
        await web.TCPSite(runner, host, port).start()
        yield runner.addresses[0][1]
    finally:
        sweeper.cancel()
        await runner.cleanup()


async def drop_slow(
    server: web.Server, started: set[RequestHandler], timeout: float
) -> None:
    """Close connections whose first request's headers have not all arrived
    ``timeout`` s after the connection was first seen; one log line each.

    Later requests on a kept-alive connection are bounded by aiohttp's
    keep-alive timeout, which closes a connection idle or half-way through
    its next request's headers.
    """
    first_seen: dict[RequestHandler, float] = {}
    loop = asyncio.get_running_loop()
    tick = min(1.0, timeout / 4)
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        live = set(server.connections)
        started &= live
        for gone in first_seen.keys() - live:
            del first_seen[gone]
        for handler in live - started:
            if now - first_seen.setdefault(handler, now) >= timeout:
                log.info("slow_request_dropped", after_s=timeout)
                handler.force_close()
                del first_seen[handler]
