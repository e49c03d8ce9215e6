"""The web server on a real port, spoken to over raw sockets the way real
networks deliver requests: bodies in many small TCP segments with pauses,
chunked bodies, oversized bodies, and clients that stall half-way."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import pytest
from structlog.testing import capture_logs

from bennettbot.app import web_deps
from bennettbot.models import FakeClock
from bennettbot.signing import make_token
from bennettbot.web import build_web_app, serving
from conftest import E2E_CALLBACK_SECRET as CALLBACK_SECRET
from conftest import E2E_GITHUB_SECRET as GITHUB_SECRET
from test_web import make_deps, merged_pr, signed

SEGMENT = 1460  # a typical TCP payload on Ethernet


@pytest.fixture
async def port(bot) -> AsyncIterator[int]:
    """The real web app, wired to the running bot, on a real loopback port."""
    async with serving(build_web_app(web_deps(bot.engine)), "127.0.0.1", 0) as bound:
        yield bound


def segments(data: bytes, size: int = SEGMENT) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` in HTTP/1.1 chunked transfer coding, one write per chunk."""
    parts = [b"%x\r\n%s\r\n" % (len(part), part) for part in segments(data, size)]
    return [*parts, b"0\r\n\r\n"]


def head(path: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(
        f"Content-Length: {length}"
        if length is not None
        else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(
    port: int, first: bytes, rest: Iterable[bytes], pause: float = 0.002
) -> tuple[int, bytes]:
    """Send ``first``, then each of ``rest`` as its own segment after a pause
    (Nagle off, so segments are not merged); the answer's status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )
    try:
        writer.write(first)
        await writer.drain()
        for part in rest:
            await asyncio.sleep(pause)  # the network's pace, not synchronisation
            writer.write(part)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status_line, _, rest_of_it = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest_of_it.partition(b"\r\n\r\n")[2]


def big_merged_pr() -> bytes:
    """A merged PR of about 25 KB, as GitHub sends for a PR with a long body."""
    payload = json.loads(merged_pr())
    payload["pull_request"]["body"] = "Lots of detail. " * 60
    body = json.dumps(payload).encode()
    assert 24_000 < len(body) < 30_000
    return body


async def deploy_notice(bot) -> str:
    found = await bot.slack.wait_for(
        lambda: (
            [m for m in bot.slack.messages("C0GENERAL") if "was merged by" in m.text]
            or None
        )
    )
    return found[0].text


async def test_a_merged_pr_in_small_segments_schedules_a_deploy(bot, port):
    body = big_merged_pr()
    headers = signed(body, "pull_request", "wire-1", GITHUB_SECRET)
    status, answer = await exchange(
        port, head("/github/deployproj/", headers, len(body)), segments(body)
    )
    assert (status, answer) == (200, b"deploy scheduled")
    assert "PR #2" in await deploy_notice(bot)
    [job] = await bot.engine.store.list_jobs()
    assert job.type == "deployproj_deploy"


async def test_a_chunked_merged_pr_schedules_a_deploy(bot, port):
    body = big_merged_pr()
    headers = signed(body, "pull_request", "wire-2", GITHUB_SECRET)
    status, _ = await exchange(
        port, head("/github/deployproj/", headers, None), chunked(body, 1000)
    )
    assert status == 200
    assert "octocat" in await deploy_notice(bot)


async def test_a_callback_in_small_segments_is_posted_in_its_thread(bot, port):
    parent = await bot.slack.post("alice", "general", "a long job runs here")
    expires = int(bot.clock.now().timestamp()) + 60
    token = make_token(CALLBACK_SECRET, expires, "C0GENERAL", parent.ts)
    path = f"/callback/?channel=C0GENERAL&thread_ts={parent.ts}&token={token}"
    message = "step done; " * 280  # about 3 KB
    body = json.dumps({"message": message}).encode()
    headers = {"Content-Type": "application/json"}
    status, _ = await exchange(port, head(path, headers, len(body)), segments(body))
    assert status == 200
    reply = await bot.slack.wait_for_reply("C0GENERAL", parent.ts, contains="step")
    assert reply.text == message


async def test_a_20_mib_chunked_body_is_413_not_403(bot, port):
    body = b"x" * (20 << 20)
    headers = signed(body, "pull_request", "wire-3", GITHUB_SECRET)
    status, _ = await exchange(
        port, head("/github/deployproj/", headers, None), chunked(body, 64 << 10), 0
    )
    assert status == 413
    assert await bot.engine.store.list_jobs() == []


@asynccontextmanager
async def quick_server(store, read_timeout: float) -> AsyncIterator[int]:
    deps, _ = make_deps(store, FakeClock())
    app = build_web_app(deps, read_timeout=read_timeout)
    async with serving(app, "127.0.0.1", 0) as bound:
        yield bound


async def test_slow_and_half_sent_requests_are_dropped_and_do_not_block(store, capfd):
    timeout = 0.5
    body = merged_pr()
    half_sent = [
        b"POST /github/myproj/ HTTP/1.1\r\nHost: x\r\nX-Hub-Sig",  # headers stall
        head("/github/myproj/", signed(body, "pull_request"), len(body))
        + body[:100],  # the body stalls
        head("/callback/?channel=C1&token=1:2", {}, None) + b"10\r\nabc",  # chunk
        b"",  # connects and says nothing
    ]
    with capture_logs() as logs:
        async with quick_server(store, timeout) as port:
            streams = []
            for number in range(250):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(half_sent[number % len(half_sent)])
                streams.append((reader, writer))
            # the server still answers, at once, while all 250 are open
            for _ in range(5):
                status, answer = await asyncio.wait_for(
                    exchange(
                        port,
                        b"GET /check/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        [],
                    ),
                    2.0,  # promptly, though 250 connections are held
                )
                assert (status, answer) == (200, b"ok")
            # each is closed by the server (EOF) within the read timeout
            async with asyncio.timeout(timeout * 6):
                for reader, _ in streams:
                    await reader.read()
            for _, writer in streams:
                writer.close()
    per_kind = {}
    for entry in logs:
        per_kind[entry["event"]] = per_kind.get(entry["event"], 0) + 1
    assert per_kind.get("slow_request_dropped", 0) + per_kind.get("request", 0) <= 260
    assert "request_failed" not in per_kind
    out, err = capfd.readouterr()
    assert len(out) + len(err) < 2_000 and "Traceback" not in err
    assert await store.list_jobs() == []
