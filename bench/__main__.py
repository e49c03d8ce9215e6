"""``python -m bench [--only NAME] [--quick]``: run the benchmarks, print figures.

Each benchmark runs in its own worker process, under a temporary folder that
is removed afterwards. Figures are informational: the exit status is 0 even
when a target is missed, and 1 only when a benchmark crashed or timed out.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import BENCHMARKS
from .common import Line, kill_tree, proc_stats
from .worker import RESULT_PREFIX

REPO_ROOT = Path(__file__).resolve().parent.parent
NAME_WIDTH = 22


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run bennettbot's benchmarks."
    )
    parser.add_argument(
        "--only", choices=BENCHMARKS, action="append", help="run only NAME (repeat)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small samples: a smoke run, not figures"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds before a benchmark is killed (default 600, quick 180)",
    )
    return parser


def format_line(line: Line) -> str:
    targets = (
        ", ".join(c.text + ("" if c.ok else " (missed)") for c in line.checks) or "none"
    )
    text = f"{line.name:<{NAME_WIDTH}} {line.figures} | target: {targets} | "
    text += line.verdict
    for note in line.notes:
        text += f"\n{'':<{NAME_WIDTH}}   note: {note}"
    return text


def run_worker(
    name: str, root: Path, quick: bool, timeout: float
) -> tuple[list[Line], str | None]:
    """Run one benchmark in a worker; its lines, and why it crashed (or None)."""
    command = [sys.executable, "-m", "bench.worker", name, "--root", str(root)]
    if quick:
        command.append("--quick")
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p
    )
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        kill_tree(process.pid)

    watchdog = threading.Timer(timeout, expire)
    watchdog.start()
    lines: list[Line] = []
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            if raw.startswith(RESULT_PREFIX):
                line = Line.from_json(raw[len(RESULT_PREFIX) :])
                lines.append(line)
                print(format_line(line), flush=True)
            else:
                print(raw, end="", flush=True)
        returncode = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()
    if timed_out.is_set():
        return lines, f"timed out after {timeout:g} s"
    if returncode != 0:
        return lines, f"worker exited with status {returncode}"
    if not lines:
        return lines, "worker printed no figures"
    return lines, None


def _cpu_ticks() -> dict[int, tuple[int, str]]:
    ticks = {}
    for pid, fields in proc_stats():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ticks[pid] = (int(fields[11]) + int(fields[12]), command.strip())
    return ticks


def busy_neighbours(seconds: float = 0.5, threshold: float = 0.2) -> list[str]:
    """Other processes using more than ``threshold`` of a CPU right now."""
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    per_second = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ticks, command) in after.items():
        if pid == os.getpid() or pid not in before:
            continue
        share = (ticks - before[pid][0]) / per_second / seconds
        if share > threshold:
            busy.append(f"pid {pid} at {share:.0%} CPU: {command[:60]}")
    return busy


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.only or list(BENCHMARKS)
    timeout = args.timeout or (180.0 if args.quick else 600.0)
    mode = " (quick: a smoke run, not figures)" if args.quick else ""
    print(
        f"bennettbot benchmarks{mode} — Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, {machine_load()}",
        flush=True,
    )
    for neighbour in busy_neighbours():
        print(f"warning: the machine is busy, figures will suffer: {neighbour}")
    crashed: list[str] = []
    verdicts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bennettbot-bench-") as tmp:
        for name in names:
            root = Path(tmp) / name
            root.mkdir()
            began = time.monotonic()
            lines, problem = run_worker(name, root, args.quick, timeout)
            verdicts += [line.verdict for line in lines]
            if problem is not None:
                crashed.append(name)
                print(f"{name:<{NAME_WIDTH}} CRASHED: {problem}", flush=True)
            elapsed = time.monotonic() - began
            print(f"{'':<{NAME_WIDTH}}   ({elapsed:.1f} s)", flush=True)
    summary = ", ".join(
        f"{verdicts.count(v)} {v}" for v in ("PASS", "MISS", "INFO") if v in verdicts
    )
    for neighbour in busy_neighbours():
        print(f"warning: the machine was busy at the end: {neighbour}")
    crashes = f"; crashed: {', '.join(crashed)}" if crashed else ""
    print(f"done: {summary or 'no figures'}{crashes}; {machine_load()}", flush=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
