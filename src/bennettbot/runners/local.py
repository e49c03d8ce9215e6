"""Running a job as a local shell command."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import shlex
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

from bennettbot.models import Outcome, RunResult, RunSpec

_OPERATOR_CHARS = frozenset("();<>|&")
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL when a job is stopped
T = TypeVar("T")


class _Stopped(enum.Enum):
    STOPPED = "stopped"


STOPPED = _Stopped.STOPPED


async def until_stopped(work: Awaitable[T], stop: asyncio.Event | None) -> T | _Stopped:
    """Await ``work``, or ``STOPPED`` if ``stop`` is set first (``work`` is
    then cancelled)."""
    if stop is None:
        return await work
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return task.result() if task.done() and not task.cancelled() else STOPPED


KNOWN_PROGRAMS = 1024
# Shell keywords, and the shell's builtins: a builtin and the program of the
# same name may differ (dash's `echo 'a\nb'` prints two lines, /bin/echo
# one), so these always go through the shell, as written.
_NOT_PROGRAMS = frozenset(
    [
        "!",
        "{",
        "}",
        "[[",
        "]]",
        ".",
        ":",
        "[",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "chdir",
        "command",
        "continue",
        "do",
        "done",
        "echo",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "fi",
        "for",
        "function",
        "getopts",
        "hash",
        "if",
        "in",
        "jobs",
        "kill",
        "local",
        "printf",
        "pwd",
        "read",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "source",
        "test",
        "then",
        "time",
        "times",
        "trap",
        "true",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    ]
)


def exec_form(command: str, is_program: Callable[[str], bool] = bool) -> str:
    """``exec COMMAND`` when ``command`` is one simple command, else ``command``.

    /bin/sh (dash) forks for a lone command, so ``sleep 5`` would be two
    processes; with ``exec`` the shell becomes the command. Anything that
    is not plainly a program with arguments (operators, redirections,
    newlines, assignments, shell keywords and builtins) is left alone, and
    so is a first word that ``is_program`` does not confirm: a wrong "no"
    costs one process, never a change of meaning.
    """
    if "\n" in command:
        return command
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: let the shell say so
        return command
    if not words or any(set(word) <= _OPERATOR_CHARS for word in words):
        return command
    first = words[0]
    if first in _NOT_PROGRAMS or "=" in first or not is_program(first):
        return command
    return f"exec {command}"


def program_finder(
    cwd: Path | str, env: Mapping[str, str], known: dict | None = None
) -> Callable[[str], bool]:
    """Whether a word names an executable file, as the job's shell would find it.

    With ``known``, answers are remembered there (at most ``KNOWN_PROGRAMS``):
    a stale "no" costs one process, a stale "yes" makes ``exec`` report the
    missing program with the same status 127 as the shell would.
    """
    path = env.get("PATH", os.environ.get("PATH", os.defpath))

    def look(word: str) -> bool:
        if "/" in word:
            return os.access(Path(cwd, word), os.X_OK)
        return shutil.which(word, path=path) is not None

    def is_program(word: str) -> bool:
        if known is None:
            return look(word)
        key = (str(cwd) if "/" in word else path, word)
        if (found := known.get(key)) is None:
            if len(known) >= KNOWN_PROGRAMS:
                known.clear()
            found = known[key] = look(word)
        return found

    return is_program


class LocalRunner:
    """Runs ``spec.command`` through ``/bin/sh`` on this machine.

    The command gets its own session (so its own process group), its own
    environment (``spec.env`` only), and the log files' descriptors as stdout
    and stderr: the kernel writes its output straight to ``spec.log_dir``
    while it runs. However the job ends (exit, timeout, cancellation, a
    stop), its whole process group is killed, so no child it started
    outlives it. A stop (``spec.stop``) sends the group SIGTERM first, and
    SIGKILL after ``stop_grace`` seconds.
    """

    def __init__(self, *, stop_grace: float = STOP_GRACE) -> None:
        self._programs: dict[tuple[str, str], bool] = {}  # see program_finder
        self.stop_grace = stop_grace

    async def run(self, spec: RunSpec) -> RunResult:
        logs = open_logs(spec)
        if isinstance(logs, RunResult):
            return logs
        stdout, stderr = logs
        with stdout, stderr:
            try:
                is_program = program_finder(spec.cwd, spec.env, self._programs)
                process = await asyncio.create_subprocess_shell(
                    exec_form(spec.command, is_program),
                    cwd=spec.cwd,
                    env=dict(spec.env),  # the job's own (see jobenv), not ours
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
                    returncode = await until_stopped(process.wait(), spec.stop)
                if returncode is STOPPED:
                    await self._stop(process)
                    note(stderr, "stopped (stop job id)")
                    return RunResult(Outcome.STOPPED, message="stopped")
            except TimeoutError:
                await _kill(process)
                message = f"timed out after {spec.timeout_seconds:.15g} s"
                note(stderr, f"{message}; killed")
                return RunResult(Outcome.TIMED_OUT, message=message)
            except asyncio.CancelledError:
                await _kill(process)
                raise
            # whatever it left running in the background goes with it
            _kill_group(process.pid)
        return exit_result(returncode)

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM to the group; SIGKILL once the job has had its grace."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.stop_grace):
                await process.wait()
        await _kill(process)  # the shell's children, if it went first

    async def close(self) -> None:
        """Nothing to release: every run cleans up after itself."""


def open_logs(spec: RunSpec) -> tuple[IO[bytes], IO[bytes]] | RunResult:
    """Create ``spec.log_dir`` and open its ``stdout`` and ``stderr`` files,
    or say why that failed (an ``ERROR`` result).

    The files are unbuffered: what is written lands in the file at once.
    """
    try:
        try:  # the dispatcher has usually made the folder: skip a mkdir
            stdout = spec.stdout_path.open("wb", buffering=0)
        except FileNotFoundError:
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
    _kill_group(process.pid)
    await process.wait()


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in group ``pgid`` (the job's session).

    Orphans that die this way are reaped by PID 1: in the image, ``tini``.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
