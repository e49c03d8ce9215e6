"""Running a job as a local shell command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import IO

from bennettbot.models import Outcome, RunResult, RunSpec


class LocalRunner:
    """Runs ``spec.command`` through ``/bin/sh`` on this machine.

    The command gets its own session (so its own process group) and the log
    files' descriptors as stdout and stderr: the kernel writes its output
    straight to ``spec.log_dir`` while it runs. A timeout or the cancellation
    of the calling task kills the whole process group, so children the job
    started go too.
    """

    async def run(self, spec: RunSpec) -> RunResult:
        logs = open_logs(spec)
        if isinstance(logs, RunResult):
            return logs
        stdout, stderr = logs
        with stdout, stderr:
            try:
                process = await asyncio.create_subprocess_shell(
                    spec.command,
                    cwd=spec.cwd,
                    env=os.environ | dict(spec.env),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as exc:
                message = _start_error(spec, exc)
                note(stderr, message)
                return RunResult(Outcome.ERROR, message=message)

            try:
                async with asyncio.timeout(spec.timeout_seconds):
                    returncode = await process.wait()
            except TimeoutError:
                await _kill(process)
                message = f"timed out after {spec.timeout_seconds:.15g} s"
                note(stderr, f"{message}; killed")
                return RunResult(Outcome.TIMED_OUT, message=message)
            except asyncio.CancelledError:
                await _kill(process)
                raise
        return exit_result(returncode)

    async def close(self) -> None:
        """Nothing to release: every run cleans up after itself."""


def open_logs(spec: RunSpec) -> tuple[IO[bytes], IO[bytes]] | RunResult:
    """Create ``spec.log_dir`` and open its ``stdout`` and ``stderr`` files,
    or say why that failed (an ``ERROR`` result).

    The files are unbuffered: what is written lands in the file at once.
    """
    try:
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        stdout = spec.stdout_path.open("wb", buffering=0)
        try:
            stderr = spec.stderr_path.open("wb", buffering=0)
        except OSError:
            stdout.close()
            raise
    except OSError as exc:
        message = f"cannot write logs to {spec.log_dir}: {exc.strerror or exc}"
        return RunResult(Outcome.ERROR, message=message)
    return stdout, stderr


def exit_result(returncode: int) -> RunResult:
    """The result for a command that ended with ``returncode``.

    A negative ``returncode`` means the command was killed by that signal.
    """
    if returncode == 0:
        return RunResult(Outcome.SUCCEEDED, exit_status=0)
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        message = f"killed by {name}"
    else:
        message = f"exited with status {returncode}"
    return RunResult(Outcome.FAILED, exit_status=returncode, message=message)


def _start_error(spec: RunSpec, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError | NotADirectoryError) and not os.path.isdir(
        spec.cwd
    ):
        return f"cannot run the job: folder {spec.cwd} does not exist"
    return f"cannot start the job in {spec.cwd}: {exc.strerror or exc}"


def note(log: IO[bytes], message: str) -> None:
    """Add ``message`` to a job's log, so it reads what happened to the job."""
    with contextlib.suppress(OSError):
        log.write(f"\n[bennettbot] {message}\n".encode())


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the process group of ``process`` and reap ``process``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
