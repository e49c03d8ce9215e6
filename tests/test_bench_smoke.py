"""The benchmark suite still runs (figures are not asserted here: see bench/)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = (
    "dispatch_latency",
    "throughput",
    "memory",
    "memory_idle",
    "ssh",
    "slack_acks_steady",
    "slack_acks_burst",
    "slack_mention_to_start",
    "slack_echo_result",
    "idle_all_roles",
    "start_to_healthy",
    "web_check",
    "web_ping",
    "web_merged_pr",
    "web_redelivery",
    "split_roles",
    "history",
    "progress",
    "app_home",
)


@pytest.mark.timeout(300)
async def test_quick_benchmark_run_prints_every_figure():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--quick",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 280)
    text = output.decode()
    assert process.returncode == 0, text
    for name in BENCHMARKS:
        assert re.search(rf"^{name}\s.*\| (PASS|MISS|INFO)$", text, re.M), text
