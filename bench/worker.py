"""Runs one benchmark: ``python -m bench.worker NAME --root DIR [--quick]``.

Prints each result line as JSON after ``RESULT_PREFIX`` on stdout; exits
non-zero (with a traceback on stderr) if the benchmark crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from . import BENCHMARKS
from .common import quiet_logging

RESULT_PREFIX = "@@bench "


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quiet_logging(args.root / "bench.log")
    module_name, _, function = BENCHMARKS[args.name].partition(":")
    module = importlib.import_module(module_name)
    run = getattr(module, function or "run")
    lines = asyncio.run(run(args.root, args.quick))
    for line in lines:
        print(RESULT_PREFIX + line.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
