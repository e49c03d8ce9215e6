"""An asyncssh server on 127.0.0.1 that really executes the commands it gets.

Run as its own process, so that a benchmark's figures are the client's alone
(a real remote host has its own CPUs too)::

    python -m bench.sshserver FOLDER

``FOLDER`` holds ``host_key`` and ``authorized_keys``; the server writes the
port it listens on to ``FOLDER/port`` and, on SIGTERM, prints its counts as
JSON on stdout and exits. Like asyncssh's server in general, it sets no limit
on sessions per connection (OpenSSH's ``MaxSessions`` defaults to 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
from pathlib import Path

import asyncssh

HOST = "127.0.0.1"
_CHUNK = 65536


class CommandServer:
    """Accepts public-key logins and runs each session's command in a shell."""

    def __init__(self, host_key: Path, authorized_keys: Path) -> None:
        self._host_key = host_key
        self._authorized_keys = authorized_keys
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.port = 0
        self.accepted = 0  # connections
        self.sessions = 0  # sessions (commands) started
        self.active = 0
        self.peak_active = 0

    async def start(self) -> None:
        owner = self

        class Counting(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                owner.accepted += 1

        self._acceptor = await asyncssh.create_server(
            Counting,
            HOST,
            0,
            server_host_keys=[str(self._host_key)],
            authorized_client_keys=str(self._authorized_keys),
            process_factory=self._execute,
            encoding=None,
        )
        self.port = self._acceptor.get_port()

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

    async def _execute(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.sessions += 1
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            await _run_locally(process)
        finally:
            self.active -= 1


async def _run_locally(process: asyncssh.SSHServerProcess[bytes]) -> None:
    local = await asyncio.create_subprocess_shell(
        process.command or "",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert local.stdout is not None and local.stderr is not None
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_forward(local.stdout, process.stdout))
            group.create_task(_forward(local.stderr, process.stderr))
        returncode = await local.wait()
    except BaseException:
        # The client went away (or we are stopping): kill it, as sshd would.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(local.pid, signal.SIGKILL)
        await local.wait()
        raise
    if returncode < 0:
        process.exit_with_signal(signal.Signals(-returncode).name[3:])
    else:
        process.exit(returncode)


async def _forward(source: asyncio.StreamReader, sink: asyncssh.SSHWriter) -> None:
    while data := await source.read(_CHUNK):
        sink.write(data)
        await sink.drain()


async def serve(folder: Path) -> dict[str, object]:
    server = CommandServer(folder / "host_key", folder / "authorized_keys")
    await server.start()
    ready = folder / "port.tmp"
    ready.write_text(str(server.port))
    ready.rename(folder / "port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.close()
    return {
        "accepted": server.accepted,
        "sessions": server.sessions,
        "peak_active": server.peak_active,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    folder = Path(sys.argv[1])
    print(json.dumps(asyncio.run(serve(folder))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
