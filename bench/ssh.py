"""``ssh``: trivial jobs to one host over one reused SSH connection.

An asyncssh server (``bench.sshserver``) runs in its own process on
127.0.0.1 and really executes each command. The benchmark's process holds
only the client side: one ``SSHRunner``. After one warm-up job (which opens
the connection), 200 ``true`` jobs are started at once through
``SSHRunner.run``; jobs/s = 200 / the time until the last one finished. Then
the same 200 jobs go through a real ``Dispatcher.run()`` loop with a
namespace that has a ``remote`` table, sharing the runner (and so the
connection). The server counts the connections it accepted: it must be 1.
Peak RSS is the benchmark process's high-water mark (VmHWM).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
import time
from pathlib import Path

import asyncssh

from bennettbot.models import Outcome, Remote, RunSpec
from bennettbot.runners import SSHRunner

from .common import (
    NAMESPACE,
    REQUESTER,
    Check,
    Line,
    at_least,
    at_most,
    job_config,
    kill_tree,
    peak_rss_mib,
    running_dispatcher,
)
from .sshserver import HOST

START_TIMEOUT = 30.0


def write_keys(root: Path) -> tuple[Path, Path, asyncssh.SSHKey]:
    """Client key, and the server's folder (host key, authorized_keys)."""
    client = asyncssh.generate_private_key("ssh-ed25519")
    host = asyncssh.generate_private_key("ssh-ed25519")
    server_dir = root / "server"
    server_dir.mkdir()
    key_path = root / "id_client"
    for path, key in ((key_path, client), (server_dir / "host_key", host)):
        path.write_bytes(key.export_private_key())
        path.chmod(0o600)
    (server_dir / "authorized_keys").write_bytes(client.export_public_key())
    return key_path, server_dir, host


async def wait_for_port(folder: Path, server: asyncio.subprocess.Process) -> int:
    began = time.monotonic()
    while not (folder / "port").exists():
        if server.returncode is not None:
            raise RuntimeError(f"the SSH server exited with {server.returncode}")
        if time.monotonic() - began > START_TIMEOUT:
            raise TimeoutError("the SSH server did not start")
        await asyncio.sleep(0.01)
    return int((folder / "port").read_text())


def spec(root: Path, remote: Remote, number: int) -> RunSpec:
    return RunSpec(
        run_id=number,
        job_type=f"{NAMESPACE}_ssh",
        command="true",
        cwd=remote.cwd,
        log_dir=root / "logs" / str(number),
        timeout_seconds=60,
        remote=remote,
    )


async def run(root: Path, quick: bool) -> list[Line]:
    count = 20 if quick else 200
    key_path, server_dir, host_key = write_keys(root)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.sshserver",
        str(server_dir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        port = await wait_for_port(server_dir, server)
        known_hosts = root / "known_hosts"
        public = host_key.export_public_key().decode().strip()
        known_hosts.write_text(f"[{HOST}]:{port} {public}\n")
        remote = Remote(host=HOST, user=getpass.getuser(), port=port, cwd=str(root))
        runner = SSHRunner(key_path, known_hosts)
        try:
            began = time.perf_counter()
            warm = await runner.run(spec(root, remote, 0))
            first = time.perf_counter() - began
            began = time.perf_counter()
            results = await asyncio.gather(
                *(runner.run(spec(root, remote, n)) for n in range(1, count + 1))
            )
            elapsed = time.perf_counter() - began
            runner_peak = peak_rss_mib()
            dispatched = await through_dispatcher(
                root / "dispatcher", remote, runner, count
            )
            dispatcher_peak = peak_rss_mib()
        finally:
            await runner.close()
        server.terminate()
        async with asyncio.timeout(20):
            output, _ = await server.communicate()
        stats = json.loads(output)
    finally:
        if server.returncode is None:
            kill_tree(server.pid)
            await server.wait()
    bad = [r for r in (warm, *results) if r.outcome is not Outcome.SUCCEEDED]
    if bad:
        raise RuntimeError(f"{len(bad)} of {count + 1} SSH jobs failed: {bad[0]}")
    rate = count / elapsed
    connections = stats["accepted"]
    server_note = (
        "server: asyncssh in a separate process (its peak RSS "
        f"{stats['peak_rss_mib']:.0f} MiB, {stats['peak_active']} sessions at "
        "once, not counted above); asyncssh's server has no per-connection "
        "session limit, OpenSSH's sshd has MaxSessions (default 10)"
    )
    dispatch_rate, dispatch_elapsed = dispatched
    return [
        Line(
            "ssh",
            f"{rate:.0f} jobs/s ({count} concurrent `true` jobs through "
            f"SSHRunner.run in {elapsed:.2f} s), {connections} connection(s) "
            f"opened, peak RSS {runner_peak:.1f} MiB",
            (
                at_least("rate", rate, 150, "jobs/s"),
                Check("connections = 1", connections == 1),
                at_most("peak RSS", runner_peak, 120, "MiB"),
            ),
            (
                f"first job (opening the connection) took {first * 1000:.0f} ms",
                server_note,
            ),
        ),
        Line(
            "ssh_dispatch",
            f"{dispatch_rate:.0f} jobs/s ({count} jobs of distinct types in a "
            f"remote namespace, through Dispatcher.run(), in "
            f"{dispatch_elapsed:.2f} s), same connection, peak RSS "
            f"{dispatcher_peak:.1f} MiB",
            (at_least("rate", dispatch_rate, 150, "jobs/s"),),
        ),
    ]


async def through_dispatcher(
    root: Path, remote: Remote, runner: SSHRunner, count: int
) -> tuple[float, float]:
    """Jobs/s and seconds for ``count`` remote jobs queued to a dispatcher."""
    root.mkdir()
    config = job_config(
        {f"j{i}": "true" for i in range(count)},
        remote={
            "host": remote.host,
            "user": remote.user,
            "port": remote.port,
            "cwd": remote.cwd,
        },
    )
    async with running_dispatcher(root, config, ssh_runner=runner) as rig:
        began = time.perf_counter()
        for index in range(count):
            await rig.queue.schedule_job(f"{NAMESPACE}_j{index}", {}, REQUESTER)
        await rig.notifier.wait_finished(count, timeout=120)
        elapsed = time.perf_counter() - began
        failures = list(rig.notifier.failures)
    if failures:
        raise RuntimeError(f"{len(failures)} dispatched SSH jobs failed: {failures[0]}")
    return count / elapsed, elapsed
