"""``web_check``, ``web_ping``, ``web_merged_pr``: the web role under load.

Each runs the real service, ``python -m bennettbot --role web``, on a free
loopback port with everything under the temporary folder, talking to the Slack
emulator (in a process of its own, as in ``slackrig``). Its job config has one
namespace, ``proj``, with ``default_channel = "#general"`` (each scheduled
deploy is announced there, as in production) and a job ``deploy``
(``true``). Once ``GET /check/`` answers, an
aiohttp client in the benchmark process keeps ``CONCURRENCY`` requests in
flight for ``DURATION`` seconds (bounded also by ``MAX_REQUESTS``):

- ``web_check``: ``GET /check/``;
- ``web_ping``: a signed ``ping`` (``tests/fixtures/github/ping.payload.json``);
- ``web_redelivery``: the same merged PR with a new ``X-GitHub-Delivery``
  each time, as GitHub's redeliveries and replayed bodies arrive: the first
  schedules the deploy, every other is recorded and answered "already
  handled" (one merge, one deploy);
- ``web_merged_pr``: a signed ``pull_request`` (the published ``closed``
  payload with ``merged`` set, ~25 KB) for ``proj``. Every request is a
  distinct merge (its own pull request id, signed anew) with its own
  ``X-GitHub-Delivery``, so each one is recorded twice (delivery and merge)
  and schedules (or pushes back) the deploy. Afterwards the database must
  hold exactly one waiting ``proj_deploy``.

The client is Python and shares the host's CPUs with the server, so it
depresses the figures; the server's own CPU use is shown in a note. At the end
the server gets SIGTERM and must exit with status 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bennettbot.emulator.harness import free_port, service_environment
from bennettbot.store import Store

from .common import (
    Check,
    Line,
    at_least,
    at_most,
    kill_tree,
    percentile,
    proc_stats,
    start_service,
)
from .slackrig import EmulatorHost, emulator

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "github"
GITHUB_SECRET = "bench-github-secret"
CONCURRENCY = 32
DURATION, QUICK_DURATION = 10.0, 2.0
WARMUP = 0.5  # seconds of load before the clock starts (not counted)
MAX_REQUESTS = 500_000  # a bound on top of the time limit
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
PROJECT = "proj"
SHARED_CPU_NOTE = (
    "the load generator is a Python (aiohttp) client sharing the host's "
    f"{os.cpu_count()} CPUs with the server, which depresses the figures"
)


def write_config(root: Path) -> Path:
    path = root / "jobs.toml"
    path.write_text(
        f'[{PROJECT}]\ndefault_channel = "#general"\n'
        f'[{PROJECT}.jobs.deploy]\nrun_args_template = "true"\n'
    )
    return path


def web_env(
    root: Path, config_path: Path, port: int, slack: EmulatorHost
) -> dict[str, str]:
    """The environment the web role needs, everything under ``root``."""
    return service_environment(root, JOB_CONFIG_PATH=str(config_path)) | {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_APP_USERNAME": "bot",
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "EBMBOT_WEBHOOK_SECRET": "s",
        "WEBHOOK_ORIGIN": "http://127.0.0.1:9",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
    }


def signed_headers(body: bytes, event: str) -> dict[str, str]:
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "Content-Type": "application/json",
    }


PULL_ID = b"918273645501"  # stands in the body for each request's pull request id


def merged_pr_body() -> bytes:
    payload = json.loads((FIXTURES / "pull_request.closed.payload.json").read_text())
    payload["pull_request"]["merged"] = True  # as published: closed, not merged
    payload["pull_request"]["merged_by"] = {"login": "octocat"}
    payload["pull_request"]["id"] = int(PULL_ID)
    return json.dumps(payload).encode()


def distinct_merges() -> Callable[[int], tuple[bytes, dict[str, str]]]:
    """Request ``n``: the merged PR with pull request id ``n``, signed."""
    template = merged_pr_body()
    assert template.count(PULL_ID) == 1

    def request(n: int) -> tuple[bytes, dict[str, str]]:
        body = template.replace(PULL_ID, str(n).encode())
        return body, signed_headers(body, "pull_request")

    return request


@dataclass(frozen=True, slots=True)
class Scenario:
    """What one benchmark sends: a method, a path, maybe a signed body."""

    name: str
    what: str
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    min_rate: float
    max_p99_ms: float | None = None
    # request n's body and headers, when each request differs
    vary: Callable[[int], tuple[bytes, dict[str, str]]] | None = None

    def request(self, n: int) -> tuple[bytes | None, dict[str, str]]:
        body, headers = self.vary(n) if self.vary else (self.body, self.headers)
        return body, headers | {"X-GitHub-Delivery": f"bench-{n}"}


def scenario(name: str) -> Scenario:
    github = f"/github/{PROJECT}/"
    if name == "web_check":
        return Scenario(name, "GET /check/", "GET", "/check/", None, {}, 3000)
    if name == "web_ping":
        body = (FIXTURES / "ping.payload.json").read_bytes()
        return Scenario(
            name,
            "signed ping",
            "POST",
            github,
            body,
            signed_headers(body, "ping"),
            1500,
        )
    body = merged_pr_body()
    if name == "web_redelivery":
        return Scenario(
            name,
            f"signed merged PR, one merge redelivered ({len(body):,} bytes)",
            "POST",
            github,
            body,
            signed_headers(body, "pull_request"),
            1000,
            max_p99_ms=100,
        )
    return Scenario(
        name,
        f"signed merged PR, distinct merges ({len(body):,} bytes)",
        "POST",
        github,
        None,
        {},
        1000,
        max_p99_ms=100,
        vary=distinct_merges(),
    )


@dataclass
class Load:
    latencies: list[float]
    statuses: dict[int, int]
    errors: int
    seconds: float


async def drive(base: str, sc: Scenario, duration: float) -> Load:
    """``CONCURRENCY`` loops sending ``sc`` until ``duration`` (after warm-up)."""
    deliveries = itertools.count()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    url = base + sc.path
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    measuring = False
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            nonlocal errors, sent
            body, headers = sc.request(next(deliveries))
            began = loop.time()
            try:
                async with session.request(
                    sc.method, url, data=body, headers=headers
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                if measuring:
                    errors += 1
                return
            if measuring:
                latencies.append(loop.time() - began)
                statuses[status] = statuses.get(status, 0) + 1
                sent += 1

        async def worker(until: Callable[[], bool]) -> None:
            while not until():
                await one()

        warm_end = loop.time() + WARMUP
        await asyncio.gather(
            *(worker(lambda: loop.time() >= warm_end) for _ in range(CONCURRENCY))
        )
        measuring = True
        began = loop.time()
        end = began + duration
        await asyncio.gather(
            *(
                worker(lambda: loop.time() >= end or sent >= MAX_REQUESTS)
                for _ in range(CONCURRENCY)
            )
        )
        seconds = loop.time() - began
    return Load(latencies, statuses, errors, seconds)


async def wait_until_up(base: str, process: asyncio.subprocess.Process) -> float:
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"web role exited with {process.returncode}")
            try:
                async with session.get(base + "/check/") as response:
                    if response.status == 200:
                        return time.monotonic() - began
            except aiohttp.ClientError:
                pass
            if time.monotonic() - began > START_TIMEOUT:
                raise TimeoutError("the web role did not answer GET /check/")
            await asyncio.sleep(0.02)


def cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    for found, fields in proc_stats():
        if found == pid:
            return (int(fields[11]) + int(fields[12])) / ticks
    return 0.0


async def bench(root: Path, quick: bool, name: str) -> list[Line]:
    sc = scenario(name)
    duration = QUICK_DURATION if quick else DURATION
    async with emulator(root) as slack:
        return await _bench(root, sc, duration, free_port(), slack, name, quick)


async def _bench(
    root: Path,
    sc: Scenario,
    duration: float,
    port: int,
    slack: EmulatorHost,
    name: str,
    quick: bool,
) -> list[Line]:
    base = f"http://127.0.0.1:{port}"
    stderr_path = root / "web.stderr"
    db_path = root / "bot.db"
    with stderr_path.open("wb") as stderr:
        process = await start_service(
            "web", root, web_env(root, write_config(root), port, slack), stderr
        )
    try:
        started_in = await wait_until_up(base, process)
        cpu_before = cpu_seconds(process.pid)
        load = await drive(base, sc, duration)
        server_cpu = cpu_seconds(process.pid) - cpu_before
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT):
            returncode = await process.wait()
    finally:
        if process.returncode is None:
            kill_tree(process.pid)
            await process.wait()
    if not load.latencies:
        raise RuntimeError(f"no request answered; see {stderr_path}")
    count = len(load.latencies)
    rate = count / load.seconds
    p50 = percentile(load.latencies, 50) * 1000
    p99 = percentile(load.latencies, 99) * 1000
    non_2xx = sum(n for status, n in load.statuses.items() if not 200 <= status < 300)
    statuses = ", ".join(f"{s}×{n}" for s, n in sorted(load.statuses.items()))
    checks = [
        at_least("rate", rate, sc.min_rate, "req/s"),
        Check("no non-2xx answer or error", non_2xx == 0 and load.errors == 0),
    ]
    if sc.max_p99_ms is not None:
        checks.append(at_most("p99", p99, sc.max_p99_ms, "ms"))
    figures = (
        f"{sc.what} ×{CONCURRENCY} for {load.seconds:.1f} s: {rate:,.0f} req/s "
        f"({count:,} requests), p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"{non_2xx} non-2xx, {load.errors} errors"
    )
    if name in ("web_merged_pr", "web_redelivery"):
        store = await Store.open(db_path)
        try:
            jobs = await store.list_jobs()
        finally:
            await store.close()
        waiting = [
            j for j in jobs if j.type == f"{PROJECT}_deploy" and j.started_at is None
        ]
        figures += f"; {len(waiting)} waiting {PROJECT}_deploy"
        checks.append(Check("exactly 1 waiting deploy", len(waiting) == 1))
    figures += f"; SIGTERM → exit {returncode}"
    checks.append(Check("exit status 0 on SIGTERM", returncode == 0))
    notes = [
        SHARED_CPU_NOTE,
        f"server CPU {server_cpu:.1f} s over the {load.seconds + WARMUP:.1f} s "
        f"of load ({server_cpu / (load.seconds + WARMUP):.0%} of one core); "
        f"statuses {statuses}; answered GET /check/ {started_in:.2f} s after start; "
        f"{WARMUP:g} s warm-up not counted",
    ]
    if quick:
        notes.append("quick run: 2 s of load, not comparable with the targets")
    return [Line(name, figures, tuple(checks), tuple(notes))]


async def run_check(root: Path, quick: bool) -> list[Line]:
    return await bench(root, quick, "web_check")


async def run_ping(root: Path, quick: bool) -> list[Line]:
    return await bench(root, quick, "web_ping")


async def run_merged_pr(root: Path, quick: bool) -> list[Line]:
    return await bench(root, quick, "web_merged_pr")


async def run_redelivery(root: Path, quick: bool) -> list[Line]:
    return await bench(root, quick, "web_redelivery")
