"""Show (part of) a job's log file.

    python showlogs.py head|tail|all stdout|stderr LOGDIR

LOGDIR is a run's log folder, relative to LOGS_DIR (for example
``test_hello/20261127-193000``) or absolute.  Only files inside LOGS_DIR (taken
from the environment, default ``./logs``) can be read: the real path, with
symlinks followed, must stay inside the real path of LOGS_DIR.

Exit status: 0 on success, 1 when the log file cannot be read (missing, not a
file), 2 on a usage error or a path outside LOGS_DIR.
"""

import collections
import itertools
import os
import stat
import sys
from pathlib import Path

USAGE = "usage: showlogs.py head|tail|all stdout|stderr LOGDIR"

HEAD_LINES = 20
TAIL_LINES = 20
# `all` is uploaded as a file; keep it under the bot's 1 MiB report limit.
ALL_MAX_CHARS = int(os.environ.get("SHOWLOGS_ALL_MAX_CHARS", "1000000"))
CHUNK_CHARS = 64 * 1024

MODES = ("head", "tail", "all")
LOG_TYPES = {"stdout": "stdout", "out": "stdout", "stderr": "stderr", "err": "stderr"}


class ShowLogsError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def printable(text: str) -> str:
    """Escape what would break a one-line message (newlines, control chars)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def real_path(path: Path) -> Path:
    # Unlike Path.resolve() in Python 3.11, realpath() does not raise on a
    # symlink loop: what it returns still contains the loop, and opening that
    # fails.
    return Path(os.path.realpath(path))


def logs_root() -> Path:
    return real_path(Path(os.environ.get("LOGS_DIR") or "./logs"))


def log_path(log_type: str, log_dir: str) -> Path:
    """Return the real path of the log file, refusing anything outside LOGS_DIR."""
    root = logs_root()
    # An absolute log_dir replaces root here; it is checked like any other path.
    path = real_path(root / log_dir / log_type)
    if path == root or not path.is_relative_to(root):
        raise ShowLogsError(
            f"showlogs: refusing to read {printable(log_dir)}: "
            "only logs inside LOGS_DIR can be read",
            2,
        )
    return path


def open_log(path: Path, shown: str):
    """Open a regular file for reading as text, without following a symlink."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ShowLogsError(f"showlogs: no such log file: {shown}", 1) from None
    except OSError as exc:
        raise ShowLogsError(
            f"showlogs: cannot read {shown}: {printable(exc.strerror or str(exc))}", 1
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ShowLogsError(f"showlogs: not a log file: {shown}", 1)
    return open(fd, encoding="utf-8", errors="replace")


def read_head(f) -> str:
    return "".join(itertools.islice(f, HEAD_LINES))


def read_tail(f) -> str:
    return "".join(collections.deque(f, maxlen=TAIL_LINES))


def read_all(f) -> str:
    text = f.read(ALL_MAX_CHARS)
    rest = 0
    while chunk := f.read(CHUNK_CHARS):
        rest += len(chunk)
    if not rest:
        return text
    # Cut at the end of a line when one is reasonably close.
    cut_at = text.rfind("\n", ALL_MAX_CHARS // 2) + 1
    if cut_at:
        rest += len(text) - cut_at
        text = text[:cut_at]
    total = len(text) + rest
    if not text.endswith("\n"):
        text += "\n"
    return (
        f"{text}[... {rest:,} more characters cut: showing the first "
        f"{total - rest:,} of {total:,}; use `tail` to see the end]\n"
    )


READERS = {"head": read_head, "tail": read_tail, "all": read_all}


def show(mode: str, log_type: str, log_dir: str) -> str:
    path = log_path(log_type, log_dir)
    shown = printable(f"{log_dir.rstrip('/')}/{log_type}")
    with open_log(path, shown) as f:
        text = READERS[mode](f)
    if not text:
        return "(empty)\n"
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if (
        len(args) != 3
        or args[0].lower() not in MODES
        or args[1].lower() not in LOG_TYPES
        or not args[2]
    ):
        print(USAGE, file=sys.stderr)
        return 2
    mode, log_type, log_dir = args[0].lower(), LOG_TYPES[args[1].lower()], args[2]

    # Job output is read as UTF-8 whatever the locale of the host says.
    sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    sys.stderr.reconfigure(encoding="utf-8", errors="replace")
    try:
        text = show(mode, log_type, log_dir)
    except ShowLogsError as exc:
        print(exc.message, file=sys.stderr)
        return exc.status
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
