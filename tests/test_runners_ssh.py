"""SSHRunner against asyncssh's in-process server and a real OpenSSH sshd.

Both servers run commands on this machine, so a test can see what a remote
command did to the filesystem and whether its processes are gone.
"""

import asyncio
import dataclasses
import fcntl
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from bennettbot.models import Outcome, Remote, RunResult, RunSpec
from bennettbot.runners import SSHRunner
from bennettbot.runners.ssh import remote_command
from sshservers import (  # noqa: F401 (fixtures)
    HOST,
    InProcessSSHServer,
    OpenSSHServer,
    SSHKeys,
    assert_killed,
    fifo,
    read_line,
    ssh_keys_fixture,
    ssh_runner_fixture,
    ssh_server_fixture,
    sshd_fixture,
    wait_for_exit,
    write_known_hosts,
)

PIDS_THEN_WAIT = 'sleep 30 & echo "$$ $!" > {fifo}; wait'


def spec_for(
    tmp_path: Path,
    port: int,
    command: str,
    *,
    user: str = "bot",
    cwd: str | None = None,
    name: str = "run",
    timeout_seconds: float = 30,
    env: dict[str, str] | None = None,
) -> RunSpec:
    remote_cwd = cwd if cwd is not None else str(tmp_path)
    return RunSpec(
        run_id=1,
        job_type="remote_job",
        command=command,
        cwd=remote_cwd,
        log_dir=tmp_path / "logs" / name,
        timeout_seconds=timeout_seconds,
        env=env or {},
        remote=Remote(host=HOST, user=user, port=port, cwd=remote_cwd),
    )


@pytest.fixture
def runner(ssh_runner: SSHRunner) -> SSHRunner:
    return ssh_runner


# ------------------------------------------------------------ in-process ----


async def test_output_and_exit_status(tmp_path, ssh_server, runner):
    spec = spec_for(tmp_path, ssh_server.port, "echo out; echo err >&2; exit 3")

    result = await runner.run(spec)

    assert result == RunResult(Outcome.FAILED, 3, "exited with status 3")
    assert spec.stdout_path.read_text() == "out\n"
    assert spec.stderr_path.read_text() == "err\n"


async def test_success_in_the_remote_folder_with_the_env_additions(
    tmp_path, ssh_server, runner
):
    folder = tmp_path / "remote folder"
    folder.mkdir()
    spec = spec_for(
        tmp_path,
        ssh_server.port,
        'pwd; printf "%s\\n" "$EBMBOT_CALLBACK_URL"',
        cwd=str(folder),
        env={"EBMBOT_CALLBACK_URL": "http://bot/callback?a=1&b='2'"},
    )

    result = await runner.run(spec)

    assert result == RunResult(Outcome.SUCCEEDED, 0)
    assert spec.stdout_path.read_text() == f"{folder}\nhttp://bot/callback?a=1&b='2'\n"


async def test_binary_output_is_kept_byte_for_byte(tmp_path, ssh_server, runner):
    spec = spec_for(tmp_path, ssh_server.port, "printf '\\377\\000\\303\\251'")

    await runner.run(spec)

    assert spec.stdout_path.read_bytes() == b"\xff\x00\xc3\xa9"


async def test_missing_remote_folder_does_not_run_the_command(
    tmp_path, ssh_server, runner
):
    spec = spec_for(
        tmp_path, ssh_server.port, f"touch {tmp_path}/ran", cwd=str(tmp_path / "nope")
    )

    result = await runner.run(spec)

    assert result.outcome == Outcome.FAILED
    assert result.exit_status == 1
    assert not (tmp_path / "ran").exists()


async def test_death_by_signal(tmp_path, ssh_server, runner):
    result = await runner.run(spec_for(tmp_path, ssh_server.port, "kill -TERM $$"))

    assert result == RunResult(Outcome.FAILED, -15, "killed by SIGTERM")


async def test_unknown_host_key_is_refused(tmp_path, ssh_keys, ssh_server):
    known_hosts = tmp_path / "empty_known_hosts"
    known_hosts.write_text("")
    runner = SSHRunner(ssh_keys.client_key_path, known_hosts)
    spec = spec_for(tmp_path, ssh_server.port, f"touch {tmp_path}/ran")

    result = await runner.run(spec)

    assert result.outcome == Outcome.ERROR
    assert result.message.startswith(
        f"SSH host key for {HOST}:{ssh_server.port} is not trusted"
        f" (not in {known_hosts}"
    )
    assert "ssh-keyscan" in result.message
    assert result.message in spec.stderr_path.read_text()
    assert not (tmp_path / "ran").exists()
    await runner.close()


async def test_mismatched_host_key_is_refused(tmp_path, ssh_keys, ssh_server):
    known_hosts = write_known_hosts(
        tmp_path / "other_known_hosts", ssh_server.port, ssh_keys.other_host_key
    )
    runner = SSHRunner(ssh_keys.client_key_path, known_hosts)
    spec = spec_for(tmp_path, ssh_server.port, f"touch {tmp_path}/ran")

    result = await runner.run(spec)

    assert result.outcome == Outcome.ERROR
    assert f"SSH host key for {HOST}:{ssh_server.port} is not trusted" in (
        result.message
    )
    assert not (tmp_path / "ran").exists()
    await runner.close()


async def test_many_jobs_share_one_connection(tmp_path, ssh_server, runner):
    specs = [
        spec_for(tmp_path, ssh_server.port, f"echo {n}", name=str(n)) for n in range(50)
    ]

    with structlog.testing.capture_logs() as logs:
        results = await asyncio.gather(*(runner.run(spec) for spec in specs))

    assert {result.outcome for result in results} == {Outcome.SUCCEEDED}
    assert [spec.stdout_path.read_text() for spec in specs] == [
        f"{n}\n" for n in range(50)
    ]
    assert ssh_server.accepted == 1
    assert [e["event"] for e in logs].count("ssh_connection_opened") == 1


async def test_dropped_connection_is_reopened(tmp_path, ssh_server, runner):
    first = await runner.run(spec_for(tmp_path, ssh_server.port, "true", name="1"))
    await ssh_server.drop_all()

    second = await runner.run(spec_for(tmp_path, ssh_server.port, "echo again"))

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    assert ssh_server.accepted == 2


async def test_timeout_kills_the_remote_command(tmp_path, ssh_server, runner):
    spec = spec_for(
        tmp_path,
        ssh_server.port,
        PIDS_THEN_WAIT.format(fifo=tmp_path / "pids"),
        timeout_seconds=2,
    )
    async with fifo(tmp_path / "pids") as pids:
        started = time.monotonic()
        task = asyncio.create_task(runner.run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        result = await task

    assert result == RunResult(Outcome.TIMED_OUT, message="timed out after 2 s")
    assert time.monotonic() - started < 15
    assert await wait_for_exit(shell)
    assert await wait_for_exit(child)
    # The connection survives for the next job.
    assert (await runner.run(spec_for(tmp_path, ssh_server.port, "true"))).outcome == (
        Outcome.SUCCEEDED
    )
    assert ssh_server.accepted == 1


async def test_cancellation_kills_the_remote_command(tmp_path, ssh_server, runner):
    spec = spec_for(
        tmp_path, ssh_server.port, PIDS_THEN_WAIT.format(fifo=tmp_path / "pids")
    )
    async with fifo(tmp_path / "pids") as pids:
        task = asyncio.create_task(runner.run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert await wait_for_exit(shell)
    assert await wait_for_exit(child)


async def test_output_lands_in_the_log_while_the_job_runs(tmp_path, ssh_server, runner):
    spec = spec_for(
        tmp_path,
        ssh_server.port,
        f"echo started; echo ready > {tmp_path}/ready; sleep 30",
    )
    async with fifo(tmp_path / "ready") as ready:
        task = asyncio.create_task(runner.run(spec))
        try:
            assert await read_line(ready) == "ready\n"
            async with asyncio.timeout(20):
                # The chunk may still be on its way through the connection.
                while spec.stdout_path.read_text() != "started\n":
                    await asyncio.sleep(0.01)
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_connection_refused_is_an_error(tmp_path, ssh_keys):
    with socket.socket() as closed:
        closed.bind((HOST, 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        known_hosts = write_known_hosts(tmp_path / "kh", port, ssh_keys.host_key)
        runner = SSHRunner(ssh_keys.client_key_path, known_hosts)
        result = await runner.run(spec_for(tmp_path, port, "true"))

    assert result == RunResult(
        Outcome.ERROR, message=f"SSH connection to bot@{HOST}:{port} was refused"
    )


async def test_connect_timeout_is_an_error(tmp_path, ssh_keys):
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen()  # accepts, but never says a word
        port = silent.getsockname()[1]
        known_hosts = write_known_hosts(tmp_path / "kh", port, ssh_keys.host_key)
        runner = SSHRunner(ssh_keys.client_key_path, known_hosts, connect_timeout=0.5)
        result = await runner.run(spec_for(tmp_path, port, "true"))

    assert result == RunResult(
        Outcome.ERROR,
        message=f"SSH connection to bot@{HOST}:{port} timed out after 0.5 s",
    )


async def test_wrong_client_key_is_an_error(tmp_path, ssh_keys, ssh_server):
    runner = SSHRunner(ssh_keys.other_client_key_path, ssh_server.known_hosts)

    result = await runner.run(spec_for(tmp_path, ssh_server.port, "true"))

    assert result.outcome == Outcome.ERROR
    assert result.message == (
        f"SSH login as bot to {HOST}:{ssh_server.port} was refused with the key"
        f" {ssh_keys.other_client_key_path}"
    )


async def test_missing_key_file_is_an_error(tmp_path, ssh_server):
    missing = tmp_path / "no_such_key"
    runner = SSHRunner(missing, ssh_server.known_hosts)

    result = await runner.run(spec_for(tmp_path, ssh_server.port, "true"))

    assert result == RunResult(
        Outcome.ERROR,
        message=f"cannot connect to bot@{HOST}:{ssh_server.port}:"
        f" SSH key {missing} not found",
    )


async def test_missing_known_hosts_is_an_error(tmp_path, ssh_keys, ssh_server):
    missing = tmp_path / "no_known_hosts"
    runner = SSHRunner(ssh_keys.client_key_path, missing)

    result = await runner.run(spec_for(tmp_path, ssh_server.port, "true"))

    assert result == RunResult(
        Outcome.ERROR,
        message=f"cannot connect to bot@{HOST}:{ssh_server.port}:"
        f" known hosts file {missing} not found",
    )


async def test_no_remote_is_an_error(tmp_path, ssh_keys):
    runner = SSHRunner(ssh_keys.client_key_path, tmp_path / "known_hosts")
    spec = RunSpec(1, "x", "true", tmp_path, tmp_path / "logs", 10)

    result = await runner.run(spec)

    assert result.outcome == Outcome.ERROR


async def test_close_closes_the_connections(tmp_path, ssh_server, runner):
    await runner.run(spec_for(tmp_path, ssh_server.port, "true"))
    assert ssh_server.open_connections == 1

    await runner.close()

    await ssh_server.wait_until_no_connections()


def test_remote_command_quotes_folder_and_values():
    command = remote_command(
        "/srv/my app", {"A": "x y", "B": "$(rm -rf /)"}, "python jobs.py"
    )

    assert command == (
        "cd '/srv/my app' || exit 1; export A='x y'; export B='$(rm -rf /)';"
        " python jobs.py"
    )


def test_remote_command_home_folder():
    assert (
        remote_command("~/app dir", {}, "ls") == "cd \"$HOME\"/'app dir' || exit 1; ls"
    )
    assert remote_command("~", {}, "ls") == 'cd "$HOME" || exit 1; ls'


def test_remote_command_refuses_bad_variable_names():
    with pytest.raises(ValueError, match="invalid environment variable name"):
        remote_command("/", {"A; rm -rf /": "x"}, "true")


# ----------------------------------------------------------- OpenSSH sshd ----


@pytest.fixture
async def sshd_runner(
    ssh_keys: SSHKeys, sshd: OpenSSHServer
) -> AsyncIterator[SSHRunner]:
    runner = SSHRunner(ssh_keys.client_key_path, sshd.known_hosts)
    try:
        yield runner
    finally:
        await runner.close()


def sshd_spec(tmp_path: Path, sshd: OpenSSHServer, command: str, **kwargs) -> RunSpec:
    return spec_for(tmp_path, sshd.port, command, user=sshd.user, **kwargs)


async def test_sshd_output_and_exit_status(tmp_path, sshd, sshd_runner):
    spec = sshd_spec(tmp_path, sshd, "echo out; echo err >&2; pwd; exit 3")

    result = await sshd_runner.run(spec)

    assert result == RunResult(Outcome.FAILED, 3, "exited with status 3")
    assert spec.stdout_path.read_text() == f"out\n{tmp_path}\n"
    assert spec.stderr_path.read_text() == "err\n"


async def test_sshd_env_has_only_the_additions(
    tmp_path, sshd, sshd_runner, monkeypatch
):
    monkeypatch.setenv("BENNETTBOT_LOCAL_ONLY", "secret")
    spec = sshd_spec(
        tmp_path, sshd, "env", env={"EBMBOT_CALLBACK_URL": "http://bot/cb?x=1&y=2"}
    )

    result = await sshd_runner.run(spec)

    assert result.outcome == Outcome.SUCCEEDED
    lines = spec.stdout_path.read_text().splitlines()
    assert "EBMBOT_CALLBACK_URL=http://bot/cb?x=1&y=2" in lines
    assert not any(line.startswith("BENNETTBOT_LOCAL_ONLY") for line in lines)


async def test_sshd_unknown_host_key_is_refused(tmp_path, ssh_keys, sshd):
    known_hosts = write_known_hosts(
        tmp_path / "other_known_hosts", sshd.port, ssh_keys.other_host_key
    )
    runner = SSHRunner(ssh_keys.client_key_path, known_hosts)

    result = await runner.run(sshd_spec(tmp_path, sshd, f"touch {tmp_path}/ran"))

    assert result.outcome == Outcome.ERROR
    assert result.message.startswith(
        f"SSH host key for {HOST}:{sshd.port} is not trusted (not in {known_hosts}"
    )
    assert not (tmp_path / "ran").exists()
    await runner.close()


async def test_sshd_many_jobs_share_one_connection(tmp_path, sshd, sshd_runner):
    accepted = sshd.log_count("Accepted publickey for")
    specs = [sshd_spec(tmp_path, sshd, f"echo {n}", name=str(n)) for n in range(30)]

    with structlog.testing.capture_logs() as logs:
        first = await sshd_runner.run(specs[0])
        rest = await asyncio.gather(*(sshd_runner.run(spec) for spec in specs[1:]))

    assert {r.outcome for r in [first, *rest]} == {Outcome.SUCCEEDED}
    assert [spec.stdout_path.read_text() for spec in specs] == [
        f"{n}\n" for n in range(30)
    ]
    assert [e["event"] for e in logs].count("ssh_connection_opened") == 1
    assert sshd.log_count("Accepted publickey for") == accepted + 1


async def test_sshd_concurrent_first_uses_open_one_connection(
    tmp_path, sshd, sshd_runner
):
    accepted = sshd.log_count("Accepted publickey for")
    specs = [sshd_spec(tmp_path, sshd, "true", name=str(n)) for n in range(10)]

    results = await asyncio.gather(*(sshd_runner.run(spec) for spec in specs))

    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}
    assert sshd.log_count("Accepted publickey for") == accepted + 1


async def test_sshd_timeout_kills_the_remote_command(tmp_path, sshd, sshd_runner):
    spec = sshd_spec(
        tmp_path, sshd, PIDS_THEN_WAIT.format(fifo=tmp_path / "pids"), timeout_seconds=2
    )
    async with fifo(tmp_path / "pids") as pids:
        started = time.monotonic()
        task = asyncio.create_task(sshd_runner.run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        result = await task

    assert result == RunResult(Outcome.TIMED_OUT, message="timed out after 2 s")
    assert time.monotonic() - started < 15
    await assert_killed(sshd, shell, child)


async def test_sshd_cancellation_kills_the_remote_command(tmp_path, sshd, sshd_runner):
    spec = sshd_spec(tmp_path, sshd, PIDS_THEN_WAIT.format(fifo=tmp_path / "pids"))
    async with fifo(tmp_path / "pids") as pids:
        task = asyncio.create_task(sshd_runner.run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await assert_killed(sshd, shell, child)


async def test_sshd_dropped_connection_is_reopened(tmp_path, sshd, sshd_runner):
    accepted = sshd.log_count("Accepted publickey for")
    first = await sshd_runner.run(sshd_spec(tmp_path, sshd, "true", name="1"))
    await sshd.drop_connections()

    second = await sshd_runner.run(sshd_spec(tmp_path, sshd, "echo again"))

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    assert sshd.log_count("Accepted publickey for") == accepted + 2


class Gate:
    """A locked file: remote jobs running ``flock PATH true`` wait until opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def open(self) -> None:
        self._file.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    gate = Gate(tmp_path / "gate")
    try:
        yield gate
    finally:
        gate.open()


def start_gated_jobs(
    runner: SSHRunner, sshd: OpenSSHServer, tmp_path: Path, gate: Gate, count: int
) -> list[asyncio.Task[RunResult]]:
    """Start jobs that each write their number to the FIFO ``up``, then wait."""
    command = "echo {n} > {up}; flock {gate} true; echo done {n}"
    return [
        asyncio.create_task(
            runner.run(
                sshd_spec(
                    tmp_path,
                    sshd,
                    command.format(n=n, up=tmp_path / "up", gate=gate.path),
                    name=f"gated-{n}",
                )
            )
        )
        for n in range(count)
    ]


async def test_sshd_jobs_beyond_max_sessions_wait_for_a_session(
    tmp_path, sshd, sshd_runner, gate
):
    # sshd allows 10 sessions per connection (its default MaxSessions), and
    # so does the runner: the 11th and 12th job wait instead of failing.
    accepted = sshd.log_count("Accepted publickey for")
    async with fifo(tmp_path / "up") as up:
        tasks = start_gated_jobs(sshd_runner, sshd, tmp_path, gate, 12)
        first = {await read_line(up) for _ in range(10)}
        gate.open()
        rest = {await read_line(up) for _ in range(2)}
        results = await asyncio.gather(*tasks)

    assert first | rest == {f"{n}\n" for n in range(12)}
    assert {result.outcome for result in results} == {Outcome.SUCCEEDED}
    assert sshd.log_count("Accepted publickey for") == accepted + 1


async def test_sshd_refused_session_fails_the_job_but_keeps_the_connection(
    tmp_path, ssh_keys, sshd, gate
):
    runner = SSHRunner(ssh_keys.client_key_path, sshd.known_hosts, max_sessions=11)
    accepted = sshd.log_count("Accepted publickey for")
    try:
        async with fifo(tmp_path / "up") as up:
            tasks = start_gated_jobs(runner, sshd, tmp_path, gate, 10)
            for _ in range(10):
                await read_line(up)

            with structlog.testing.capture_logs() as logs:
                refused = await runner.run(sshd_spec(tmp_path, sshd, "true"))

            gate.open()
            results = await asyncio.gather(*tasks)
    finally:
        await runner.close()

    assert refused.outcome == Outcome.ERROR
    assert refused.message.startswith(f"cannot start the job on {sshd.user}@{HOST}")
    events = [e["event"] for e in logs]
    assert "ssh_session_refused_retrying" in events
    assert "ssh_connection_dropped" not in events
    assert {result.outcome for result in results} == {Outcome.SUCCEEDED}
    assert sshd.log_count("Accepted publickey for") == accepted + 1


async def test_a_stop_signals_the_remote_command_and_closes(
    tmp_path, ssh_server, runner
):
    stop = asyncio.Event()
    spec = dataclasses.replace(
        spec_for(
            tmp_path, ssh_server.port, PIDS_THEN_WAIT.format(fifo=tmp_path / "pids")
        ),
        stop=stop,
    )
    async with fifo(tmp_path / "pids") as pids:
        task = asyncio.create_task(runner.run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        stop.set()
        result = await asyncio.wait_for(task, 20)

    assert result == RunResult(Outcome.STOPPED, message="stopped")
    assert await wait_for_exit(shell)
    assert await wait_for_exit(child)


async def test_sshd_a_stop_signals_the_remote_command_and_closes(
    tmp_path, ssh_keys, sshd
):
    # as root, OpenSSH ignores the TERM request: KILL and closing follow
    runner = SSHRunner(ssh_keys.client_key_path, sshd.known_hosts, stop_grace=0.5)
    stop = asyncio.Event()
    spec = dataclasses.replace(
        sshd_spec(tmp_path, sshd, PIDS_THEN_WAIT.format(fifo=tmp_path / "pids")),
        stop=stop,
    )
    try:
        async with fifo(tmp_path / "pids") as pids:
            task = asyncio.create_task(runner.run(spec))
            shell, child = map(int, (await read_line(pids)).split())
            stop.set()
            result = await asyncio.wait_for(task, 20)
    finally:
        await runner.close()

    assert result == RunResult(Outcome.STOPPED, message="stopped")
    await assert_killed(sshd, shell, child)
