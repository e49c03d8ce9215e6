"""The composition root: the one place where concrete classes meet.

Resources are opened here in order (job config, database, HTTP session, SSH
connections) and closed in reverse; roles run as tasks of one event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import aiohttp
import structlog
from slack_sdk.web.async_client import AsyncWebClient

from .confirmations import Confirmations
from .dispatcher import Dispatcher
from .fabfile import fetch_fabfile
from .health import heartbeat_name
from .jobconfig import JobConfig, load_job_config
from .jobqueue import JobQueue
from .jobrun import Folders, RunKit
from .lease import Lease
from .metrics import Metrics
from .models import Clock, QueuedJob, SystemClock
from .notifier import LogNotifier, Notifier
from .responder import Responder
from .runners import LocalRunner
from .settings import SERVICE_ROLES, Role, Settings
from .signing import callback_url
from .slack.notifier import CountingWebClient, SlackNotifier, add_retries
from .store import Store
from .timetable import Timetable

if TYPE_CHECKING:
    from pydantic import SecretStr

    from .web import WebDeps

log = structlog.get_logger("app")


@dataclass
class Engine:
    """The job engine's parts, wired together."""

    settings: Settings
    config: JobConfig
    store: Store
    session: aiohttp.ClientSession
    dispatcher: Dispatcher
    queue: JobQueue
    responder: Responder
    slack: AsyncWebClient | None  # None when no bot token is set
    notifier: Notifier  # the dispatcher's and the web server's way to Slack
    clock: Clock
    confirmations: Confirmations


@asynccontextmanager
async def open_engine(
    settings: Settings,
    *,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    config: JobConfig | None = None,
) -> AsyncIterator[Engine]:
    """Open everything the engine needs; close it all on exit."""
    clock = clock or SystemClock()
    config = config or load_job_config(settings.JOB_CONFIG_PATH)
    async with AsyncExitStack() as stack:
        store = await Store.open(settings.DB_PATH)
        stack.push_async_callback(store.close)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        slack = None
        if settings.SLACK_BOT_TOKEN is not None:
            slack = add_retries(
                CountingWebClient(
                    token=settings.SLACK_BOT_TOKEN.get_secret_value(),
                    base_url=settings.slack_api_url,
                    session=session,
                ),
                count=store.count_slack_event,
            )
        if notifier is None and slack is not None:
            notifier = SlackNotifier(
                slack, settings.SLACK_LOGS_CHANNEL, settings.SLACK_TECH_SUPPORT_CHANNEL
            )
        notifier = notifier or LogNotifier()
        ssh = None
        if any(ns.remote for ns in config.namespaces.values()):
            from .runners import SSHRunner

            ssh = SSHRunner(settings.SSH_KEY_PATH, settings.SSH_KNOWN_HOSTS)
            stack.push_async_callback(ssh.close)
        kit = RunKit(
            store=store,
            config=config,
            notifier=notifier,
            clock=clock,
            folders=Folders(
                logs=settings.LOGS_DIR,
                host_logs=settings.host_logs_dir,
                workspace=settings.WORKSPACE_DIR,
                fab_workspace=settings.FAB_WORKSPACE_DIR,
            ),
            local_runner=LocalRunner(),
            ssh_runner=ssh,
            fetch_fabfile=partial(fetch_fabfile, session),
            callback_url=_callback_builder(settings, clock),
            bot_name=settings.SLACK_APP_USERNAME,
            job_env=os.environ | settings.for_jobs(),
        )
        dispatcher = Dispatcher(
            kit,
            lease=Lease(store, clock, ttl=settings.DISPATCHER_LEASE_SECONDS),
            heartbeat_name=heartbeat_name("dispatcher"),
        )
        queue = JobQueue(store, config, clock, dispatcher.wake)
        dispatcher.timetable = Timetable(
            config, store, queue, notifier, clock, settings.SLACK_APP_USERNAME
        )
        confirmations = Confirmations(
            store, queue, config, clock, settings.SLACK_APP_USERNAME
        )
        responder = Responder(
            config,
            queue,
            store,
            clock,
            settings.SLACK_APP_USERNAME,
            logs_dir=settings.LOGS_DIR,
            host_logs_dir=settings.host_logs_dir,
            confirmations=confirmations,
        )
        yield Engine(
            settings,
            config,
            store,
            session,
            dispatcher,
            queue,
            responder,
            slack,
            notifier,
            clock,
            confirmations,
        )


def _callback_builder(settings: Settings, clock: Clock):
    secret = settings.EBMBOT_WEBHOOK_SECRET
    if not settings.WEBHOOK_ORIGIN or secret is None:
        return None

    def build(job: QueuedJob, timeout_seconds: float) -> str:
        return callback_url(
            settings.WEBHOOK_ORIGIN,
            secret.get_secret_value(),
            job.requester.channel,
            job.requester.thread_ts,
            started=clock.now().timestamp(),
            timeout_seconds=timeout_seconds,
        )

    return build


async def run_dispatcher(engine: Engine, stop: asyncio.Event) -> None:
    """Run the dispatcher until ``stop`` is set, then shut it down gracefully."""
    task = asyncio.create_task(engine.dispatcher.run(), name="dispatcher")
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    await engine.dispatcher.stop(engine.settings.SHUTDOWN_GRACE_SECONDS)
    stopped.cancel()
    if task in done:
        task.result()  # a crash of the loop itself is an error
    else:
        await task


def _bot(
    engine: Engine, stop: asyncio.Event, ping_interval: float
) -> Coroutine[object, object, None]:
    settings = engine.settings
    assert engine.slack is not None and settings.SLACK_APP_TOKEN is not None
    from .slack.connection import run_bot  # slack_bolt: only for the roles that need it

    secret = settings.SLACK_SIGNING_SECRET
    return run_bot(
        engine.slack,
        app_token=settings.SLACK_APP_TOKEN.get_secret_value(),
        signing_secret=secret.get_secret_value() if secret else "",
        tech_support_channel=settings.SLACK_TECH_SUPPORT_CHANNEL,
        logs_channel=settings.SLACK_LOGS_CHANNEL,
        bot_name=settings.SLACK_APP_USERNAME,
        check_file=settings.BOT_CHECK_FILE,
        responder=engine.responder,
        store=engine.store,
        clock=engine.clock,  # one clock in the process
        stop=stop,
        ping_interval=ping_interval,
        confirmations=engine.confirmations,
    )


async def run_web(engine: Engine, stop: asyncio.Event) -> None:
    """Serve the web app on ``WEB_HOST:WEB_PORT`` until ``stop`` is set."""
    from .web import build_web_app, serving

    settings = engine.settings
    app = build_web_app(web_deps(engine))
    async with serving(app, settings.WEB_HOST, settings.WEB_PORT) as port:
        log.info("web_listening", host=settings.WEB_HOST, port=port)
        await stop.wait()


def web_deps(engine: Engine) -> WebDeps:
    """What the web app needs from the engine; it posts through the notifier."""

    from .web import WebDeps

    settings = engine.settings
    return WebDeps(
        config=engine.config,
        queue=engine.queue,
        store=engine.store,
        clock=engine.clock,
        post=engine.notifier.post,
        github_secret=_secret(settings.GITHUB_WEBHOOK_SECRET),
        callback_secret=_secret(settings.EBMBOT_WEBHOOK_SECRET),
        bot_name=settings.SLACK_APP_USERNAME,
        metrics=Metrics(engine.store, engine.clock),
        metrics_token=_secret(settings.METRICS_TOKEN),
    )


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


async def run_roles(
    engine: Engine, roles: set[str], stop: asyncio.Event, *, ping_interval: float = 10
) -> None:
    """Run ``roles`` until ``stop``; a role that fails stops the others too."""
    tasks = []
    if "dispatcher" in roles:
        tasks.append(
            asyncio.create_task(run_dispatcher(engine, stop), name="dispatcher")
        )
    if "web" in roles:
        tasks.append(asyncio.create_task(run_web(engine, stop), name="web"))
    if "bot" in roles:
        bot = _bot(engine, stop, ping_interval)
        tasks.append(asyncio.create_task(bot, name="bot"))
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    stop.set()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


async def serve(settings: Settings, role: Role, config: JobConfig | None = None) -> int:
    """Run ``role`` until SIGTERM or SIGINT; the process's exit status.

    ``config``: the job configuration, if the caller has loaded it already.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    roles: set[str] = set(SERVICE_ROLES) if role == "all" else {role}
    log.info("starting", roles=sorted(roles))
    async with open_engine(settings, config=config) as engine:
        await run_roles(engine, roles, stop)
    log.info("stopped")
    return 0
