"""The scripts shipped in the workspace, run as the bot runs them."""

import asyncio
import importlib.resources
import os
import shlex
import sys
from pathlib import Path

import pytest

WORKSPACE = Path(str(importlib.resources.files("bennettbot") / "workspace"))
JOBS = WORKSPACE / "test" / "jobs.py"


async def run(script: Path, *args: str, env=None, cwd=None) -> tuple[int, str, str]:
    """Run a workspace script like the bot does: in its folder, with PYTHONPATH."""
    full_env = {**os.environ, "PYTHONPATH": str(WORKSPACE)}
    full_env.pop("LOGS_DIR", None)
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *args,
        cwd=cwd or script.parent,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode, out.decode("utf-8"), err.decode("utf-8")


# --- workspace layout ----------------------------------------------------------


def test_workspace_is_not_a_package():
    assert WORKSPACE.is_dir()
    assert not (WORKSPACE / "__init__.py").exists()


# --- test/jobs.py ----------------------------------------------------------------


async def test_hello_default_name():
    assert await run(JOBS) == (0, "Hello World!\n", "")


async def test_hello_name():
    assert await run(JOBS, "--name=Ada") == (0, "Hello Ada!\n", "")


@pytest.mark.parametrize(
    "name",
    ["O'Brien", 'say "hi"', "Zoë 🐍 名前", "two  spaces", "$(rm -rf /); `x`"],
)
async def test_hello_name_quotes_and_unicode(name):
    assert await run(JOBS, f"--name={name}") == (0, f"Hello {name}!\n", "")


async def test_hello_name_from_shell_quoted_template():
    # The bot shell-quotes arguments into run_args_template and runs it via a shell.
    name = 'it\'s "Zoë" $HOME'
    command = f"{shlex.quote(sys.executable)} jobs.py --name={shlex.quote(name)}"
    proc = await asyncio.create_subprocess_shell(
        command,
        cwd=JOBS.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert (proc.returncode, out.decode(), err.decode()) == (
        0,
        f"Hello {name}!\n",
        "",
    )


async def test_poem():
    expected = (JOBS.parent / "poem.txt").read_text(encoding="utf-8")
    status, out, err = await run(JOBS, "poem")
    assert (status, err) == (0, "")
    assert out == expected
    assert "Tyger" in out
    assert len(expected.splitlines()) < 15


async def test_poem_found_from_any_cwd(tmp_path):
    status, out, _ = await run(JOBS, "poem", cwd=tmp_path)
    assert status == 0
    assert out == (JOBS.parent / "poem.txt").read_text(encoding="utf-8")


async def test_countdown_counts_a_line_a_second():
    status, out, err = await run(JOBS, "countdown", "--", "1")
    assert (status, err) == (0, "")
    assert out == "1…\nLift-off!\n"


@pytest.mark.parametrize("seconds", ["0", "601", "ten", "-5"])
async def test_countdown_refuses_what_is_not_1_to_600_seconds(seconds):
    status, out, err = await run(JOBS, "countdown", "--", seconds)
    assert (status, out) == (1, "")
    assert err == "error: give a whole number of seconds, 1 to 600\n"


async def test_jobs_unknown_command():
    status, out, err = await run(JOBS, "dance")
    assert status == 2
    assert out == ""
    assert "invalid choice" in err
