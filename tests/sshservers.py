"""SSH servers and process helpers for the runner tests.

Two servers a runner can connect to on 127.0.0.1:

- :class:`InProcessSSHServer`: asyncssh's server on port 0 in the test's own
  event loop. Its ``process_factory`` really executes each command locally
  (``asyncio.create_subprocess_shell`` in a new session), relays stdin,
  stdout, stderr and the exit status, and kills the command's process group
  when the client closes the channel or the connection goes (OpenSSH, by
  contrast, only kills on a "signal" request, and never in root sessions). It counts the
  connections it accepted and can drop them all.
- :class:`OpenSSHServer`: a real ``sshd`` with its own config, host key and
  authorized keys in a temporary folder, running as the current user.

Keys are generated once per session (fixture ``ssh_keys``). Import the
fixtures a test module uses, by their function names, into the module:
``from sshservers import ssh_keys_fixture, ssh_server_fixture  # noqa: F401``.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from bennettbot.emulator.harness import free_port
from bennettbot.runners.ssh import SSHRunner

HOST = "127.0.0.1"
# Bounds every wait in these helpers and the tests that use them.
WAIT_SECONDS = 20.0


# ---------------------------------------------------------------- keys ----


@dataclass(frozen=True)
class SSHKeys:
    """Keys written once per session; each server gets a copy of its own."""

    folder: Path
    client_key_path: Path  # the private key a runner logs in with
    authorized_keys: Path  # holds the public half of ``client_key_path``
    host_key: asyncssh.SSHKey  # what the servers present
    other_host_key: asyncssh.SSHKey  # a key no server has: "mismatched"
    other_client_key_path: Path  # a key no server accepts


def write_private_key(key: asyncssh.SSHKey, path: Path) -> Path:
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    return path


def write_known_hosts(path: Path, port: int, key: asyncssh.SSHKey) -> Path:
    """Write a known_hosts file trusting ``key`` for ``[127.0.0.1]:port``."""
    public = key.export_public_key().decode().strip()
    path.write_text(f"[{HOST}]:{port} {public}\n")
    return path


@pytest.fixture(name="ssh_keys", scope="session")
def ssh_keys_fixture(tmp_path_factory: pytest.TempPathFactory) -> SSHKeys:
    folder = tmp_path_factory.mktemp("ssh-keys")
    client = asyncssh.generate_private_key("ssh-ed25519")
    authorized = folder / "authorized_keys"
    authorized.write_bytes(client.export_public_key())
    return SSHKeys(
        folder=folder,
        client_key_path=write_private_key(client, folder / "id_client"),
        authorized_keys=authorized,
        host_key=asyncssh.generate_private_key("ssh-ed25519"),
        other_host_key=asyncssh.generate_private_key("ssh-ed25519"),
        other_client_key_path=write_private_key(
            asyncssh.generate_private_key("ssh-ed25519"), folder / "id_other"
        ),
    )


# ----------------------------------------------------- process helpers ----


async def wait_for_exit(pid: int, timeout: float = WAIT_SECONDS) -> bool:
    """Wait until process ``pid`` has exited; ``False`` if it is still running.

    Uses a pidfd, so it works for processes that are not our children, and
    counts a zombie as exited.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
    try:
        async with asyncio.timeout(timeout):
            await exited
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)


@contextlib.asynccontextmanager
async def fifo(path: Path) -> AsyncIterator[asyncio.StreamReader]:
    """Make a named pipe at ``path`` and read what jobs write to it.

    Opened read-write so that it never reports EOF between writers: a job can
    ``echo ... > path`` any time, and ``readline()`` waits for it.
    """
    os.mkfifo(path)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(os.open(path, os.O_RDWR | os.O_NONBLOCK), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )
    try:
        yield reader
    finally:
        transport.close()


async def read_line(reader: asyncio.StreamReader) -> str:
    async with asyncio.timeout(WAIT_SECONDS):
        return (await reader.readline()).decode()


# ------------------------------------------------- in-process server ----


class InProcessSSHServer:
    """asyncssh's server, executing commands locally; see the module doc."""

    def __init__(self, keys: SSHKeys, known_hosts: Path) -> None:
        self.keys = keys
        self.known_hosts = known_hosts  # trusts this server once it listens
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._acceptor = await asyncssh.create_server(
            lambda: _CountingServer(self),
            HOST,
            0,
            server_host_keys=[self.keys.host_key],
            authorized_client_keys=str(self.keys.authorized_keys),
            process_factory=self._handle,
            encoding=None,
        )
        self.port = self._acceptor.get_port()
        write_known_hosts(self.known_hosts, self.port, self.keys.host_key)

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def drop_all(self) -> None:
        """Cut every connection, as a network failure or a reboot would."""
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        async with asyncio.timeout(WAIT_SECONDS):
            for connection in connections:
                await connection.wait_closed()

    async def wait_until_no_connections(self) -> None:
        """Wait until every connection was closed (by the clients)."""
        async with asyncio.timeout(WAIT_SECONDS):
            for connection in list(self._connections):
                await connection.wait_closed()

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        await self.drop_all()
        if self._handlers:
            async with asyncio.timeout(WAIT_SECONDS):
                await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._execute(process)
        finally:
            self._handlers.discard(handler)

    async def _execute(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        local = await asyncio.create_subprocess_shell(
            process.command or "",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        relay = asyncio.ensure_future(_relay(process, local))
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            await asyncio.wait({relay, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
            if relay.cancelled() or relay.exception() is not None:
                # The channel closed first (the runner killed the job, or the
                # connection went): kill the command's process group.
                _killpg(local.pid, signal.SIGKILL)
                await local.wait()
        if relay.cancelled() or relay.exception() is not None:
            return
        returncode = relay.result()
        if returncode < 0:
            process.exit_with_signal(signal.Signals(-returncode).name[3:])
        else:
            process.exit(returncode)


class _CountingServer(asyncssh.SSHServer):
    def __init__(self, owner: InProcessSSHServer) -> None:
        self._owner = owner
        self._connection: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        self._owner.accepted += 1
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connections.discard(self._connection)


async def _relay(
    process: asyncssh.SSHServerProcess[bytes], local: asyncio.subprocess.Process
) -> int:
    """Relay stdin, stdout and stderr until the command's output ends."""
    assert local.stdin and local.stdout and local.stderr

    async def feed_stdin() -> None:
        assert local.stdin
        try:
            while True:
                try:
                    data = await process.stdin.read(65536)
                except asyncssh.SignalReceived as received:
                    _killpg(local.pid, signal.Signals[f"SIG{received.signal}"])
                    continue
                if not data:
                    break
                local.stdin.write(data)
                await local.stdin.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            local.stdin.close()

    async def forward(source: asyncio.StreamReader, sink: asyncssh.SSHWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()

    async with asyncio.TaskGroup() as group:
        group.create_task(feed_stdin())
        group.create_task(forward(local.stdout, process.stdout))
        group.create_task(forward(local.stderr, process.stderr))
    return await local.wait()


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@pytest.fixture(name="ssh_server")
async def ssh_server_fixture(
    ssh_keys: SSHKeys, tmp_path: Path
) -> AsyncIterator[InProcessSSHServer]:
    server = InProcessSSHServer(ssh_keys, tmp_path / "known_hosts")
    await server.start()
    try:
        yield server
    finally:
        await server.close()


# ------------------------------------------------------- OpenSSH sshd ----


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return "/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None


class OpenSSHServer:
    """A real ``sshd -D -e`` on 127.0.0.1; its log is kept in ``lines``."""

    def __init__(self, sshd: str, keys: SSHKeys, folder: Path) -> None:
        self.keys = keys
        self.folder = folder
        self.user = getpass.getuser()
        self.port = free_port(HOST)
        self.known_hosts = write_known_hosts(
            folder / "known_hosts", self.port, keys.host_key
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        host_key = write_private_key(keys.host_key, folder / "ssh_host_ed25519_key")
        config = folder / "sshd_config"
        config.write_text(
            f"""\
Port {self.port}
ListenAddress {HOST}
HostKey {host_key}
PidFile {folder / "sshd.pid"}
AuthorizedKeysFile {keys.authorized_keys}
AllowUsers {self.user}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 100
LogLevel VERBOSE
"""
        )
        if os.geteuid() == 0:
            # sshd's privilege separation needs it when run as root.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<sshd exited>")
            self._changed.notify_all()

    def wait_for_log(
        self, predicate: Callable[[list[str]], bool], timeout: float = WAIT_SECONDS
    ) -> bool:
        """Block until ``predicate(lines)`` holds; ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.lines), timeout)

    def log_count(self, pattern: str) -> int:
        with self._changed:
            return sum(1 for line in self.lines if re.search(pattern, line))

    def wait_until_listening(self) -> None:
        ready = self.wait_for_log(
            lambda lines: any(
                "Server listening" in line or "<sshd exited>" in line for line in lines
            )
        )
        log = "\n".join(self.lines)
        if not ready or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"sshd did not start:\n{log}")
        # It says so before accepting: check it really does.
        with socket.create_connection((HOST, self.port), timeout=WAIT_SECONDS):
            pass

    def session_pids(self) -> list[int]:
        """The pids of sshd's per-connection processes (and their children)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found: list[int] = []
        pending = list(children.get(self.process.pid, []))
        while pending:
            pid = pending.pop()
            found.append(pid)
            pending.extend(children.get(pid, []))
        return found

    async def drop_connections(self) -> None:
        """Kill every connection's sshd processes, leaving sshd listening."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            assert await wait_for_exit(pid), f"sshd process {pid} survived SIGKILL"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=WAIT_SECONDS)


@pytest.fixture(name="ssh_runner")
async def ssh_runner_fixture(
    ssh_keys: SSHKeys, ssh_server: InProcessSSHServer
) -> AsyncIterator[SSHRunner]:
    """An ``SSHRunner`` with the test client key, trusting the in-process server."""
    runner = SSHRunner(ssh_keys.client_key_path, ssh_server.known_hosts)
    try:
        yield runner
    finally:
        await runner.close()


@pytest.fixture(name="sshd", scope="session")
def sshd_fixture(
    ssh_keys: SSHKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenSSHServer]:
    path = find_sshd()
    if path is None:
        pytest.skip("OpenSSH sshd is not installed (neither on PATH nor /usr/sbin)")
    server = OpenSSHServer(path, ssh_keys, tmp_path_factory.mktemp("sshd"))
    server.wait_until_listening()
    try:
        yield server
    finally:
        server.stop()


async def assert_killed(sshd: OpenSSHServer, shell: int, child: int) -> None:
    """Check that the runner's KILL reached the remote command's process group.

    OpenSSH refuses "signal" requests in root sessions (they have no post-auth
    privilege separation) and leaves a command running when its channel
    closes. Logged in as root, check that the runner asked, then clean up.
    """
    if sshd.user == "root":
        asked = await asyncio.to_thread(
            sshd.wait_for_log,
            lambda lines: any("session_signal_req" in line for line in lines),
        )
        os.killpg(shell, signal.SIGKILL)
        assert asked, "the runner sent no signal request"
    assert await wait_for_exit(shell)
    assert await wait_for_exit(child)
