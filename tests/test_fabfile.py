"""Fetching a namespace's fabfile: a failure keeps the last copy."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from bennettbot.fabfile import fetch_fabfile

URL = "https://example.org/fabfile.py"
OLD = b"# the copy from last time\n"
NEW = b"from fabric import task\n\n@task\ndef deploy(c):\n    c.run('true')\n"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "op" / "fabfile.py"
    path.parent.mkdir()
    path.write_bytes(OLD)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "fabfile.py")


async def test_success_replaces_the_file(session, dest):
    with aioresponses() as mocked:
        mocked.get(URL, status=200, body=NEW)
        reason = await fetch_fabfile(session, URL, dest)

    assert reason is None
    assert dest.read_bytes() == NEW
    assert leftovers(dest.parent) == []
    assert dest.stat().st_mode & 0o777 == 0o644


async def test_success_creates_the_folder_and_file(session, tmp_path):
    dest = tmp_path / "new-namespace" / "fabfile.py"
    with aioresponses() as mocked:
        mocked.get(URL, status=200, body=NEW)
        assert await fetch_fabfile(session, URL, dest) is None

    assert dest.read_bytes() == NEW


async def test_not_found_keeps_the_previous_copy(session, dest):
    with aioresponses() as mocked:
        mocked.get(URL, status=404, body=b"not here")
        reason = await fetch_fabfile(session, URL, dest)

    assert reason == f"HTTP 404 fetching {URL}"
    assert dest.read_bytes() == OLD
    assert leftovers(dest.parent) == []


async def test_server_error_keeps_the_previous_copy(session, dest):
    with aioresponses() as mocked:
        mocked.get(URL, status=503)
        reason = await fetch_fabfile(session, URL, dest)

    assert reason == f"HTTP 503 fetching {URL}"
    assert dest.read_bytes() == OLD


async def test_timeout_keeps_the_previous_copy(session, dest):
    with aioresponses() as mocked:
        mocked.get(URL, exception=TimeoutError())
        reason = await fetch_fabfile(session, URL, dest, timeout=5)

    assert reason == f"timed out after 5 s fetching {URL}"
    assert dest.read_bytes() == OLD


async def test_connection_error_keeps_the_previous_copy(session, dest):
    with aioresponses() as mocked:
        mocked.get(URL, exception=aiohttp.ClientConnectionError("Connection refused"))
        reason = await fetch_fabfile(session, URL, dest)

    assert reason == f"Connection refused fetching {URL}"
    assert dest.read_bytes() == OLD


async def test_real_refused_connection_is_described(session, tmp_path, unused_tcp_port):
    url = f"http://127.0.0.1:{unused_tcp_port}/fabfile.py"

    reason = await fetch_fabfile(session, url, tmp_path / "fabfile.py")

    assert reason is not None
    assert reason.startswith(f"cannot connect to 127.0.0.1:{unused_tcp_port}")
    assert reason.endswith(f"fetching {url}")
    assert not (tmp_path / "fabfile.py").exists()


async def test_unwritable_destination_is_a_reason_not_an_exception(session, tmp_path):
    blocker = tmp_path / "op"
    blocker.write_text("a file where the namespace folder should be")
    with aioresponses() as mocked:
        mocked.get(URL, status=200, body=NEW)
        reason = await fetch_fabfile(session, URL, blocker / "fabfile.py")

    assert reason is not None
    assert reason.startswith(f"cannot save {URL} to {blocker / 'fabfile.py'}")


async def test_a_server_that_never_answers_times_out(session, dest):
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/fabfile.py", hang)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/fabfile.py"))
        reason = await fetch_fabfile(session, url, dest, timeout=0.2)

    assert reason == f"timed out after 0.2 s fetching {url}"
    assert dest.read_bytes() == OLD


async def test_a_fabfile_over_the_limit_is_refused_and_the_last_copy_kept(
    session, dest
):
    with aioresponses() as mocked:
        mocked.get(URL, status=200, body=b"x" * 2000)
        reason = await fetch_fabfile(session, URL, dest, limit=1000)
    assert reason == f"{URL} is larger than 1,000 bytes; not used"
    assert dest.read_bytes() == OLD
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no leftovers


async def test_a_redirect_off_https_is_refused(session, dest):
    # 0.0.0.0 reaches this machine but is not a loopback name that plain
    # HTTP is allowed for: it stands for any plain-HTTP host here
    app = web.Application()
    port = {}

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://0.0.0.0:{port['n']}/real")

    app.router.add_get("/fabfile.py", moved)
    app.router.add_get("/real", lambda _: web.Response(body=b"# evil\n"))
    async with TestServer(app, host="127.0.0.1") as server:
        port["n"] = server.port
        url = str(server.make_url("/fabfile.py"))
        reason = await fetch_fabfile(session, url, dest)
    assert reason == (
        f"{url} redirected to http://0.0.0.0:{port['n']}/real, which is not HTTPS"
    )
    assert dest.read_bytes() == OLD
