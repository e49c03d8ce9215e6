"""The scripts shipped in the workspace, run as the bot runs them."""

import asyncio
import importlib.resources
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

WORKSPACE = Path(str(importlib.resources.files("bennettbot") / "workspace"))
JOBS = WORKSPACE / "test" / "jobs.py"
SHOWLOGS = WORKSPACE / "showlogs" / "showlogs.py"

USAGE = "usage: showlogs.py head|tail|all stdout|stderr LOGDIR\n"


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


async def test_jobs_unknown_command():
    status, out, err = await run(JOBS, "dance")
    assert status == 2
    assert out == ""
    assert "invalid choice" in err


# --- showlogs/showlogs.py --------------------------------------------------------

RUN = "test_hello/20261127-193000"


@pytest.fixture
def logs(tmp_path):
    root = tmp_path / "logs"
    run_dir = root / RUN
    run_dir.mkdir(parents=True)
    (run_dir / "stdout").write_text("".join(f"out {i}\n" for i in range(1, 101)))
    (run_dir / "stderr").write_text("".join(f"err {i}\n" for i in range(1, 101)))
    return root


def lines(prefix: str, first: int, last: int) -> str:
    return "".join(f"{prefix} {i}\n" for i in range(first, last + 1))


async def showlogs(logs_dir: Path, *args: str, cwd=None) -> tuple[int, str, str]:
    # a small cap for `all`, so the cap's tests stay small
    env = {"LOGS_DIR": str(logs_dir), "SHOWLOGS_ALL_MAX_CHARS": "3500"}
    return await run(SHOWLOGS, *args, env=env, cwd=cwd)


@pytest.mark.parametrize(
    ("mode", "first", "last"),
    [("head", 1, 20), ("tail", 81, 100), ("all", 1, 100)],
)
@pytest.mark.parametrize(
    ("log_type", "prefix"),
    [("stdout", "out"), ("stderr", "err"), ("out", "out"), ("err", "err")],
)
async def test_showlogs_modes(logs, mode, first, last, log_type, prefix):
    assert await showlogs(logs, mode, log_type, RUN) == (
        0,
        lines(prefix, first, last),
        "",
    )


async def test_showlogs_accepts_trailing_slash_and_absolute_path_inside(logs):
    expected = (0, lines("out", 81, 100), "")
    assert await showlogs(logs, "tail", "stdout", RUN + "/") == expected
    assert await showlogs(logs, "tail", "stdout", str(logs / RUN)) == expected


async def test_showlogs_case_insensitive_words(logs):
    assert await showlogs(logs, "HEAD", "StdOut", RUN) == (0, lines("out", 1, 20), "")


async def test_showlogs_short_file_without_final_newline(logs):
    (logs / RUN / "stdout").write_text("one\ntwo")
    for mode in ("head", "tail", "all"):
        assert await showlogs(logs, mode, "stdout", RUN) == (0, "one\ntwo\n", "")


async def test_showlogs_undecodable_bytes(logs):
    (logs / RUN / "stdout").write_bytes(b"caf\xc3\xa9 \xff\xfe ok\n")
    status, out, err = await showlogs(logs, "all", "stdout", RUN)
    assert (status, err) == (0, "")
    assert out == "café \ufffd\ufffd ok\n"


async def test_showlogs_all_is_capped(logs):
    content = lines("a fairly long line of output", 1, 1000)
    (logs / RUN / "stdout").write_text(content)
    status, out, err = await showlogs(logs, "all", "stdout", RUN)
    assert (status, err) == (0, "")
    assert len(out) <= 3700
    body, note = out.rstrip("\n").rsplit("\n", 1)
    body += "\n"
    assert content.startswith(body)
    assert body.endswith("\n")  # cut at the end of a line
    cut = len(content) - len(body)
    assert f"{cut:,} more characters cut" in note
    assert f"of {len(content):,}" in note


async def test_showlogs_all_cap_on_single_huge_line(logs):
    (logs / RUN / "stdout").write_text("x" * 100_000)
    status, out, err = await showlogs(logs, "all", "stdout", RUN)
    assert (status, err) == (0, "")
    assert out.startswith("x" * 3500 + "\n[")
    assert "96,500 more characters cut" in out
    assert len(out) <= 3700


async def test_showlogs_all_not_capped_at_limit(logs):
    content = "y" * 3499 + "\n"
    (logs / RUN / "stdout").write_text(content)
    assert await showlogs(logs, "all", "stdout", RUN) == (0, content, "")


async def test_showlogs_tail_of_big_file(logs):
    big = logs / RUN / "stdout"
    with big.open("w") as f:
        for i in range(1, 200_001):
            f.write(f"line {i}\n")
    assert await showlogs(logs, "tail", "stdout", RUN) == (
        0,
        lines("line", 199_981, 200_000),
        "",
    )
    assert await showlogs(logs, "head", "stdout", RUN) == (0, lines("line", 1, 20), "")


@pytest.mark.parametrize("mode", ["head", "tail", "all"])
async def test_showlogs_empty_file(logs, mode):
    (logs / RUN / "stderr").write_text("")
    assert await showlogs(logs, mode, "stderr", RUN) == (0, "(empty)\n", "")


async def test_showlogs_missing_file(logs):
    status, out, err = await showlogs(logs, "tail", "stdout", "test_hello/nope")
    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert "no such log file" in err
    assert "test_hello/nope/stdout" in err


async def test_showlogs_missing_logs_dir(tmp_path):
    status, out, err = await showlogs(tmp_path / "absent", "tail", "stdout", RUN)
    assert (status, out) == (1, "")
    assert err.count("\n") == 1


async def test_showlogs_directory_is_not_a_log(logs):
    (logs / "test_other" / "run" / "stdout").mkdir(parents=True)
    status, out, err = await showlogs(logs, "all", "stdout", "test_other/run")
    assert (status, out) == (1, "")
    assert err.count("\n") == 1


async def test_showlogs_default_logs_dir_is_dot_logs(logs):
    # LOGS_DIR unset: ./logs relative to the working directory.
    status, out, err = await run(SHOWLOGS, "head", "stdout", RUN, cwd=logs.parent)
    assert (status, out, err) == (0, lines("out", 1, 20), "")


async def test_showlogs_logs_dir_through_symlink(logs, tmp_path):
    link = tmp_path / "logs-link"
    link.symlink_to(logs, target_is_directory=True)
    assert await showlogs(link, "head", "stdout", RUN) == (0, lines("out", 1, 20), "")
    assert await showlogs(link, "head", "stdout", str(link / RUN)) == (
        0,
        lines("out", 1, 20),
        "",
    )


async def test_showlogs_symlink_inside_logs_dir_is_allowed(logs):
    (logs / "latest").symlink_to(logs / RUN, target_is_directory=True)
    assert await showlogs(logs, "head", "stdout", "latest") == (
        0,
        lines("out", 1, 20),
        "",
    )


@pytest.fixture
def secret(tmp_path):
    """Log-like files outside LOGS_DIR that must never be shown."""
    for name in ("secret", "logs-evil/run"):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        (folder / "stdout").write_text("TOP SECRET\n")
        (folder / "stderr").write_text("TOP SECRET\n")
    return tmp_path / "secret"


def assert_refused(result: tuple[int, str, str]) -> None:
    status, out, err = result
    assert status == 2
    assert out == ""
    assert "SECRET" not in err
    assert err.count("\n") == 1
    assert "refusing" in err


@pytest.mark.parametrize(
    "log_dir",
    [
        "../secret",
        "test_hello/../../secret",
        "../logs-evil/run",  # shares a prefix with LOGS_DIR
        "..",
        "../../../../../../../../etc",
    ],
)
@pytest.mark.parametrize("mode", ["head", "tail", "all"])
async def test_showlogs_refuses_traversal(logs, secret, log_dir, mode):
    assert_refused(await showlogs(logs, mode, "stdout", log_dir))


async def test_showlogs_refuses_absolute_path_outside(logs, secret):
    assert_refused(await showlogs(logs, "all", "stdout", str(secret)))
    assert_refused(await showlogs(logs, "all", "stdout", "/etc"))


async def test_showlogs_refuses_directory_symlink_out(logs, secret):
    (logs / "escape").symlink_to(secret, target_is_directory=True)
    assert_refused(await showlogs(logs, "all", "stdout", "escape"))


async def test_showlogs_refuses_file_symlink_out(logs, secret):
    run_dir = logs / "test_evil" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "stdout").symlink_to(secret / "stdout")
    assert_refused(await showlogs(logs, "all", "stdout", "test_evil/run"))


async def test_showlogs_refuses_missing_path_outside(logs):
    # Outside LOGS_DIR is refused (2) before existence is checked (1).
    assert_refused(await showlogs(logs, "all", "stdout", "../nowhere"))


async def test_showlogs_symlink_loop_is_an_error(logs):
    (logs / "loop").symlink_to(logs / "loop")
    status, out, err = await showlogs(logs, "all", "stdout", "loop")
    assert status in (1, 2)
    assert out == ""
    assert err.count("\n") == 1
    assert "Traceback" not in err


async def test_showlogs_error_message_is_one_line(logs):
    status, _, err = await showlogs(logs, "all", "stdout", "a\nb/../../..")
    assert status == 2
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("tail",),
        ("tail", "stdout"),
        ("tail", "stdout", RUN, "extra"),
        ("middle", "stdout", RUN),
        ("tail", "stdin", RUN),
        ("tail", "stdout", ""),
        ("--help", "stdout", RUN),
    ],
)
async def test_showlogs_usage_errors(logs, args):
    assert await showlogs(logs, *args) == (2, "", USAGE)


async def test_showlogs_help(logs):
    status, out, err = await showlogs(logs, "--help")
    assert (status, err) == (0, "")
    assert re.search(r"head\|tail\|all", out)
