"""Jobs that run a fetched Fabric fabfile: ``fab`` is installed, the fabfile
is fetched before the run, and its task reaches a real OpenSSH sshd on
loopback with host keys checked against ``SSH_KNOWN_HOSTS``."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bennettbot.dispatcher import Dispatcher
from bennettbot.fabfile import fetch_fabfile
from bennettbot.jobrun import Folders, RunKit
from bennettbot.models import FakeClock
from bennettbot.notifier import RecordingNotifier
from bennettbot.runners import LocalRunner
from bennettbot.settings import SHIPPED_WORKSPACE
from bennettbot.store import Store
from conftest import ALICE, job_config
from sshservers import (  # noqa: F401 (fixtures)
    OpenSSHServer,
    ssh_keys_fixture,
    sshd_fixture,
)

FABFILE = """\
import shlex

from fabric import task

from jobkit.fab import connect


@task
def hello(c, name):
    remote = connect("127.0.0.1", {user!r}, {port})
    said = remote.run("echo Hello " + shlex.quote(name) + " from sshd", hide=True)
    print(said.stdout.strip())
"""


async def run_fab_job(tmp_path: Path, sshd: OpenSSHServer, known_hosts: Path):
    """Serve the fabfile on loopback, run ``fab hello`` as a job; the notices."""
    app = web.Application()
    body = FABFILE.format(user=sshd.user, port=sshd.port)
    app.router.add_get("/fabfile.py", lambda _: web.Response(text=body))
    async with (
        TestServer(app, host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
    ):
        config = job_config(
            f"""
[fabproj]
fabfile = "{server.make_url("/fabfile.py")}"
env = ["SSH_KEY_PATH", "SSH_KNOWN_HOSTS"]
[fabproj.jobs.hello]
run_args_template = "fab hello --name {{name}}"
report_stdout = true
"""
        )
        clock = FakeClock()
        store = await Store.open(tmp_path / "bot.db")
        notifier = RecordingNotifier()
        dispatcher = Dispatcher(
            RunKit(
                store=store,
                config=config,
                notifier=notifier,
                clock=clock,
                folders=Folders(
                    logs=tmp_path / "logs",
                    host_logs="/host/logs",
                    workspace=SHIPPED_WORKSPACE,  # jobkit lives there
                    fab_workspace=tmp_path / "fab",
                ),
                local_runner=LocalRunner(),
                fetch_fabfile=partial(fetch_fabfile, session),
                job_env=os.environ
                | {
                    "SSH_KEY_PATH": str(sshd.keys.client_key_path),
                    "SSH_KNOWN_HOSTS": str(known_hosts),
                },
            )
        )
        try:
            await store.schedule_job(
                "fabproj_hello", {"name": "Bob; id"}, ALICE, clock.now()
            )
            await dispatcher.run_once()
            await dispatcher.wait_idle(60)
        finally:
            await store.close()
    return notifier.notices


@pytest.mark.timeout(120)
async def test_a_fetched_fabfile_task_runs_over_ssh(tmp_path, sshd):
    notices = await run_fab_job(tmp_path, sshd, sshd.known_hosts)
    reports = [n.text for n in notices if n.kind == "report"]
    assert reports == ["Hello Bob; id from sshd\n"], notices
    assert (tmp_path / "fab" / "fabproj" / "fabfile.py").exists()


@pytest.mark.timeout(120)
async def test_an_unknown_host_key_fails_the_task(tmp_path, sshd):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    notices = await run_fab_job(tmp_path, sshd, empty)
    [failure] = [n for n in notices if n.kind == "failure"]
    assert "fabproj_hello" in failure.text and "failed" in failure.text
    [run_dir] = (tmp_path / "logs" / "fabproj_hello").iterdir()
    assert "not found in known_hosts" in (run_dir / "stderr").read_text()
