"""Running a job on a remote host over SSH, with asyncssh."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import asyncssh
import structlog

from bennettbot.models import Outcome, Remote, RunResult, RunSpec
from bennettbot.runners.local import (
    STOP_GRACE,
    STOPPED,
    exit_result,
    note,
    open_logs,
    until_stopped,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHUNK = 65536
# Waits before retrying a session that a live connection refused.
_REFUSAL_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8)

_HostKey = tuple[str, int, str]  # (host, port, user)


class SSHFailure(Exception):
    """Connecting or starting a remote command failed; ``str()`` says why."""


class SSHRunner:
    """Runs ``spec.command`` on ``spec.remote`` over SSH.

    Keeps one connection per (host, port, user), opened on first use and
    shared by every job to that host; concurrent first uses wait for the same
    connection. A cached connection found dropped when a job starts is
    discarded and opened again, once. At most ``max_sessions`` jobs run over
    a connection at once (OpenSSH's ``MaxSessions`` is 10 by default); more
    wait for a free session, within their timeout. Host keys must be in
    ``known_hosts``: an unknown or changed key fails the job and is never
    accepted.
    """

    def __init__(
        self,
        key_path: Path,
        known_hosts: Path,
        *,
        connect_timeout: float = 10.0,
        max_sessions: int = 10,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.stop_grace = stop_grace
        self._key_path = key_path
        self._known_hosts = known_hosts
        self._connect_timeout = connect_timeout
        self._max_sessions = max_sessions
        self._connections: dict[_HostKey, asyncssh.SSHClientConnection] = {}
        self._locks: dict[_HostKey, asyncio.Lock] = {}
        self._sessions: dict[_HostKey, asyncio.Semaphore] = {}
        self._log = structlog.get_logger()

    async def run(self, spec: RunSpec) -> RunResult:
        if spec.remote is None:
            return RunResult(Outcome.ERROR, message="no remote host to run the job on")
        try:
            command = remote_command(spec.remote.cwd, spec.env, spec.command)
        except ValueError as exc:
            return RunResult(Outcome.ERROR, message=str(exc))
        logs = open_logs(spec)
        if isinstance(logs, RunResult):
            return logs
        stdout, stderr = logs
        with stdout, stderr:
            return await self._run(spec.remote, command, spec, stdout, stderr)

    async def _run(
        self,
        remote: Remote,
        command: str,
        spec: RunSpec,
        stdout: IO[bytes],
        stderr: IO[bytes],
    ) -> RunResult:
        process: asyncssh.SSHClientProcess[bytes] | None = None
        key = (remote.host, remote.port, remote.user)
        sessions = self._sessions.setdefault(key, asyncio.Semaphore(self._max_sessions))
        try:
            async with asyncio.timeout(spec.timeout_seconds), sessions:
                process = await self._start(remote, command)
                ended = await until_stopped(_finish(process, stdout, stderr), spec.stop)
                if ended is STOPPED:
                    await self._stop(process)
                    note(stderr, "stopped (stop job id)")
                    return RunResult(Outcome.STOPPED, message="stopped")
        except SSHFailure as exc:
            note(stderr, str(exc))
            return RunResult(Outcome.ERROR, message=str(exc))
        except TimeoutError:
            if process is not None:
                _kill(process)
            message = f"timed out after {spec.timeout_seconds:.15g} s"
            note(stderr, f"{message}; asked the host to kill it")
            return RunResult(Outcome.TIMED_OUT, message=message)
        except asyncio.CancelledError:
            if process is not None:
                _kill(process)
            raise
        except (OSError, asyncssh.Error) as exc:
            if process is not None:
                _kill(process)
            if isinstance(exc, asyncssh.Error | ConnectionError):
                message = f"SSH connection to {_where(remote)} failed: {exc}"
            else:
                message = f"job stopped: cannot write its logs: {exc}"
            note(stderr, message)
            return RunResult(Outcome.ERROR, message=message)
        returncode = process.returncode
        if returncode is None:
            message = f"SSH connection to {_where(remote)} was lost while the job ran"
            note(stderr, message)
            return RunResult(Outcome.ERROR, message=message)
        return exit_result(returncode)

    async def _stop(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        """The SSH ``TERM`` signal; after ``stop_grace`` s, ``KILL`` and the
        channel closed."""
        with contextlib.suppress(OSError, asyncssh.Error):
            process.send_signal("TERM")
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            async with asyncio.timeout(self.stop_grace):
                await process.wait()
        _kill(process)

    async def close(self) -> None:
        """Close every connection and wait until they are closed."""
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            connection.close()
        for connection in connections:
            with contextlib.suppress(OSError, asyncssh.Error):
                await connection.wait_closed()

    async def _start(
        self, remote: Remote, command: str
    ) -> asyncssh.SSHClientProcess[bytes]:
        """Start ``command``; reopen a dropped connection once, retry refusals.

        A live connection can refuse a session for a moment, e.g. while the
        server is still closing one that just ended; that is retried after a
        short wait, a few times.
        """
        key = (remote.host, remote.port, remote.user)
        reopened = False
        waits = iter(_REFUSAL_WAITS)
        while True:
            connection = await self._connection(remote)
            try:
                return await connection.create_process(
                    command, stdin=asyncssh.DEVNULL, encoding=None
                )
            except (OSError, asyncssh.Error) as exc:
                wait = next(waits, None)
                if await _dropped(connection, exc, wait or 0):
                    self._discard(key, connection, str(exc))
                    if not reopened:
                        reopened = True
                        continue
                elif wait is not None:
                    self._log.info(
                        "ssh_session_refused_retrying",
                        reason=str(exc),
                        **_fields(remote),
                    )
                    continue
                raise SSHFailure(
                    f"cannot start the job on {_where(remote)}: {exc}"
                ) from exc

    async def _connection(self, remote: Remote) -> asyncssh.SSHClientConnection:
        key = (remote.host, remote.port, remote.user)
        async with self._locks.setdefault(key, asyncio.Lock()):
            connection = self._connections.get(key)
            if connection is not None:
                if not connection.is_closed():
                    self._log.debug("ssh_connection_reused", **_fields(remote))
                    return connection
                self._discard(key, connection, "closed")
            connection = await self._connect(remote)
            self._connections[key] = connection
            self._log.info("ssh_connection_opened", **_fields(remote))
            return connection

    async def _connect(self, remote: Remote) -> asyncssh.SSHClientConnection:
        try:
            return await asyncssh.connect(
                remote.host,
                port=remote.port,
                username=remote.user,
                client_keys=[str(self._key_path)],
                known_hosts=str(self._known_hosts),
                connect_timeout=self._connect_timeout,
                config=None,
                agent_path=None,
                password=None,
                kbdint_auth=False,
                keepalive_interval=30,
            )
        except (OSError, asyncssh.Error, asyncssh.KeyImportError, TimeoutError) as exc:
            message = self._describe(remote, exc)
            self._log.warning(
                "ssh_connection_failed", reason=message, **_fields(remote)
            )
            raise SSHFailure(message) from exc

    def _discard(
        self, key: _HostKey, connection: asyncssh.SSHClientConnection, reason: str
    ) -> None:
        if self._connections.get(key) is connection:
            del self._connections[key]
        connection.close()
        host, port, user = key
        self._log.info(
            "ssh_connection_dropped", host=host, port=port, user=user, reason=reason
        )

    def _describe(self, remote: Remote, exc: BaseException) -> str:
        where = _where(remote)
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return (
                f"SSH host key for {remote.host}:{remote.port} is not trusted"
                f" (not in {self._known_hosts}, or different from the key there);"
                " if the host is genuine, add its key there, e.g. with"
                f" ssh-keyscan -p {remote.port} {remote.host}"
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            return (
                f"SSH login as {remote.user} to {remote.host}:{remote.port} was"
                f" refused with the key {self._key_path}"
            )
        if isinstance(exc, asyncssh.KeyImportError):
            return f"cannot read the SSH key {self._key_path}: {exc}"
        if isinstance(exc, TimeoutError):
            return (
                f"SSH connection to {where} timed out after"
                f" {self._connect_timeout:.15g} s"
            )
        if isinstance(exc, FileNotFoundError) and exc.filename is not None:
            if exc.filename == str(self._key_path):
                return f"cannot connect to {where}: SSH key {exc.filename} not found"
            if exc.filename == str(self._known_hosts):
                return (
                    f"cannot connect to {where}: known hosts file {exc.filename}"
                    " not found"
                )
            return f"cannot connect to {where}: {exc.filename} not found"
        if isinstance(exc, ConnectionRefusedError):
            return f"SSH connection to {where} was refused"
        if isinstance(exc, OSError):
            return f"SSH connection to {where} failed: {exc.strerror or exc}"
        reason = exc.reason if isinstance(exc, asyncssh.Error) else str(exc)
        return f"SSH connection to {where} failed: {reason}"


def remote_command(cwd: str, env: Mapping[str, str], command: str) -> str:
    """The shell command that runs ``command`` in ``cwd`` with ``env`` added.

    A leading ``~/`` in ``cwd`` means the remote home folder. When ``cd``
    fails, the command does not run (the shell exits with status 1). Raises
    ``ValueError`` for an environment variable name a shell cannot export.
    """
    if cwd == "~":
        folder = '"$HOME"'
    elif cwd.startswith("~/"):
        folder = '"$HOME"/' + shlex.quote(cwd[2:])
    else:
        folder = shlex.quote(cwd)
    parts = [f"cd {folder} || exit 1"]
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name[:40]!r}")
        parts.append(f"export {name}={shlex.quote(value)}")
    parts.append(command)
    return "; ".join(parts)


async def _finish(
    process: asyncssh.SSHClientProcess[bytes], stdout: IO[bytes], stderr: IO[bytes]
) -> None:
    """Copy the output until EOF, then wait for the exit status."""
    await _copy_output(process, stdout, stderr)
    await process.wait()


async def _copy_output(
    process: asyncssh.SSHClientProcess[bytes], stdout: IO[bytes], stderr: IO[bytes]
) -> None:
    """Write the process's output to the log files as it arrives, until EOF."""
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_copy(process.stdout, stdout))
            group.create_task(_copy(process.stderr, stderr))
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None


async def _copy(reader: asyncssh.SSHReader[bytes], log: IO[bytes]) -> None:
    while chunk := await reader.read(_CHUNK):
        log.write(chunk)


def _kill(process: asyncssh.SSHClientProcess[bytes]) -> None:
    """Ask the remote side to kill the job, and close its channel.

    Not waiting for the remote side to confirm: a server that ignores the
    signal (OpenSSH does for root logins) keeps the channel until the command
    ends by itself.
    """
    with contextlib.suppress(OSError, asyncssh.Error):
        process.send_signal("KILL")
    process.close()


async def _dropped(
    connection: asyncssh.SSHClientConnection, exc: BaseException, wait: float
) -> bool:
    """Whether ``exc`` from opening a session means the connection is gone.

    asyncssh may report a lost connection before it has finished closing
    it, so this waits up to ``wait`` seconds for it to close. A refusal on a
    live connection (e.g. too many sessions) is not a drop: the jobs running
    over it must keep their connection.
    """
    if isinstance(exc, asyncssh.ConnectionLost | ConnectionError):
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            await connection.wait_closed()
    return connection.is_closed()


def _where(remote: Remote) -> str:
    return f"{remote.user}@{remote.host}:{remote.port}"


def _fields(remote: Remote) -> dict[str, object]:
    return {"host": remote.host, "port": remote.port, "user": remote.user}
