"""Reading a run's logs for ``showlogs``: inside ``LOGS_DIR`` only, and never
more of a file than is shown (a log may be hundreds of megabytes on one line).

These functions do blocking file I/O: call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
from pathlib import Path

LINES = 20  # for head and tail
READ_BYTES = 64 << 10  # at most this much of a file is read for head or tail
ALL_MAX_BYTES = 5 << 20  # `all` uploads at most this much
STREAMS = {
    "stdout": "stdout",
    "output": "stdout",
    "out": "stdout",
    "stderr": "stderr",
    "error": "stderr",
    "err": "stderr",
}


class LogError(Exception):
    """The log cannot be shown; the message is for the person who asked."""


def log_file(logs: Path, host_logs: str, run_dir: str, stream: str) -> Path:
    """The ``stream`` file of the run whose folder is ``run_dir``: relative to
    ``logs`` (``test_hello/20261130-120000``), or as failure reports print
    it (under ``host_logs``), or under ``logs`` itself. Nothing outside
    ``logs`` is read, symlinks included."""
    text = run_dir.strip().strip("`")
    for prefix in {host_logs.rstrip("/"), str(logs).rstrip("/")}:
        if prefix and text.startswith(prefix + "/"):
            text = text[len(prefix) + 1 :]
            break
    root = Path(os.path.realpath(logs))
    path = Path(os.path.realpath(root / text / STREAMS[stream]))
    if not text or text.startswith("/") or not path.is_relative_to(root):
        raise LogError(f"`{run_dir}` is not a run's log folder.")
    if not path.is_file():
        raise LogError(f"There is no {STREAMS[stream]} log in `{text}`.")
    return path


def head(path: Path, lines: int = LINES) -> str:
    with path.open("rb") as file:
        chunk = file.read(READ_BYTES)
    return _decode(b"".join(chunk.splitlines(keepends=True)[:lines]))


def tail(path: Path, lines: int = LINES) -> str:
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - READ_BYTES))
        chunk = file.read(READ_BYTES)
    kept = chunk.splitlines(keepends=True)
    if size > READ_BYTES and len(kept) > 1:
        kept = kept[1:]  # the first line was cut by the seek
    return _decode(b"".join(kept[-lines:]))


def end_of(path: Path, size: int) -> str:
    """The last ``size`` bytes of a log, decoded; "" when there is no log."""
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - size))
            return _decode(file.read())
    except FileNotFoundError:
        return ""


def whole(path: Path) -> tuple[str, bool]:
    """The file (at most ``ALL_MAX_BYTES``) and whether it was longer."""
    with path.open("rb") as file:
        data = file.read(ALL_MAX_BYTES + 1)
    return _decode(data[:ALL_MAX_BYTES]), len(data) > ALL_MAX_BYTES


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")
