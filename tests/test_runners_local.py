"""LocalRunner: shell commands on this machine, output streamed to log files."""

import asyncio
import os
import time
from pathlib import Path

import pytest

from bennettbot.models import Outcome, RunResult, RunSpec
from bennettbot.runners import LocalRunner
from sshservers import fifo, read_line, wait_for_exit


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def spec_for(
    tmp_path: Path, command: str, *, cwd: Path | None = None, **kwargs: object
) -> RunSpec:
    return RunSpec(
        run_id=1,
        job_type="test_job",
        command=command,
        cwd=cwd or tmp_path / "work",
        log_dir=tmp_path / "logs" / "test_job" / "20260105-090000",
        timeout_seconds=kwargs.pop("timeout_seconds", 30),
        **kwargs,
    )


async def test_stdout_and_stderr_go_to_separate_log_files(tmp_path, work):
    spec = spec_for(tmp_path, "echo out; echo err >&2; echo more out")

    result = await LocalRunner().run(spec)

    assert result.outcome == Outcome.SUCCEEDED
    assert result.exit_status == 0
    assert spec.stdout_path.read_text() == "out\nmore out\n"
    assert spec.stderr_path.read_text() == "err\n"


async def test_non_zero_exit_status_fails(tmp_path, work):
    result = await LocalRunner().run(spec_for(tmp_path, "exit 3"))

    assert result.outcome == Outcome.FAILED
    assert result.exit_status == 3
    assert result.message == "exited with status 3"


async def test_death_by_signal_keeps_negative_status(tmp_path, work):
    result = await LocalRunner().run(spec_for(tmp_path, "kill -TERM $$"))

    assert result.outcome == Outcome.FAILED
    assert result.exit_status == -15
    assert result.message == "killed by SIGTERM"


async def test_output_lands_in_the_log_while_the_job_runs(tmp_path, work):
    spec = spec_for(tmp_path, f"echo started; echo ready > {tmp_path}/ready; sleep 30")
    async with fifo(tmp_path / "ready") as ready:
        task = asyncio.create_task(LocalRunner().run(spec))
        try:
            assert await read_line(ready) == "ready\n"
            assert spec.stdout_path.read_text() == "started\n"
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_timeout_kills_the_process_group(tmp_path, work):
    # The shell waits for a background child: both must go.
    spec = spec_for(
        tmp_path,
        f'sleep 30 & echo "$$ $!" > {tmp_path}/pids; wait',
        timeout_seconds=2.0,
    )
    async with fifo(tmp_path / "pids") as pids:
        started = time.monotonic()
        task = asyncio.create_task(LocalRunner().run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        result = await task

    assert result.outcome == Outcome.TIMED_OUT
    assert result.message == "timed out after 2 s"
    assert time.monotonic() - started < 15
    assert await wait_for_exit(shell)
    assert await wait_for_exit(child)
    assert "timed out after 2 s" in spec.stderr_path.read_text()


async def test_fractional_timeout_is_reported_as_given(tmp_path, work):
    result = await LocalRunner().run(
        spec_for(tmp_path, "sleep 30", timeout_seconds=0.25)
    )

    assert result.outcome == Outcome.TIMED_OUT
    assert result.message == "timed out after 0.25 s"


async def test_cancellation_kills_the_process_group_and_propagates(tmp_path, work):
    spec = spec_for(tmp_path, f'sleep 30 & echo "$$ $!" > {tmp_path}/pids; wait')
    async with fifo(tmp_path / "pids") as pids:
        task = asyncio.create_task(LocalRunner().run(spec))
        shell, child = map(int, (await read_line(pids)).split())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert await wait_for_exit(shell)
    assert await wait_for_exit(child)


async def test_the_environment_is_the_specs_alone(tmp_path, work, monkeypatch):
    monkeypatch.setenv("BENNETTBOT_TEST_INHERITED", "from the bot")
    spec = spec_for(
        tmp_path,
        "env",
        env={
            "EBMBOT_CALLBACK_URL": "http://localhost:9999/callback/?token=x y",
            "PYTHONPATH": "/opt/bennettbot/workspace",
        },
    )

    result = await LocalRunner().run(spec)

    assert result.outcome == Outcome.SUCCEEDED
    lines = spec.stdout_path.read_text().splitlines()
    assert not any(line.startswith("BENNETTBOT_TEST_INHERITED=") for line in lines)
    assert "EBMBOT_CALLBACK_URL=http://localhost:9999/callback/?token=x y" in lines
    assert "PYTHONPATH=/opt/bennettbot/workspace" in lines
    assert "BENNETTBOT_TEST_INHERITED" in os.environ  # ours is untouched


async def test_runs_in_the_given_folder(tmp_path, work):
    spec = spec_for(tmp_path, "pwd")

    await LocalRunner().run(spec)

    assert Path(spec.stdout_path.read_text().strip()).resolve() == work.resolve()


async def test_missing_folder_is_an_error_not_an_exception(tmp_path):
    missing = tmp_path / "no-such-folder"
    spec = spec_for(tmp_path, "echo hi", cwd=missing)

    result = await LocalRunner().run(spec)

    assert result.outcome == Outcome.ERROR
    assert result.message == f"cannot run the job: folder {missing} does not exist"
    assert result.message in spec.stderr_path.read_text()


async def test_unwritable_log_folder_is_an_error(tmp_path, work):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log folder should be")

    result = await LocalRunner().run(spec_for(tmp_path, "echo hi"))

    assert result.outcome == Outcome.ERROR
    assert result.message.startswith(f"cannot write logs to {tmp_path}")


async def test_log_folder_is_created_with_parents(tmp_path, work):
    spec = spec_for(tmp_path, "true")
    assert not spec.log_dir.parent.exists()

    await LocalRunner().run(spec)

    assert spec.stdout_path.read_bytes() == b""
    assert spec.stderr_path.read_bytes() == b""


async def test_close_is_harmless(tmp_path, work):
    runner = LocalRunner()
    await runner.close()
    assert (await runner.run(spec_for(tmp_path, "true"))).outcome == Outcome.SUCCEEDED


@pytest.mark.parametrize(
    ("command", "execs"),
    [
        ("sleep 5", True),
        ("cat --name='Bob; x && y'", True),
        ("ls $HOME", True),
        ("printf '%s' --name='Bob'", False),  # builtins stay builtins
        ("echo 'a\\nb'", False),
        ("test -e x", False),
        ("kill 1", False),
        ("echo hi; exit 3", False),
        ("echo a;b", False),
        ("a && b", False),
        ("a|b", False),
        ("sleep 5 &", False),
        ("echo oops >&2", False),
        ("x>y", False),
        ("FOO=1 prog", False),
        ("cd x", False),
        ("while true; do :; done", False),
        ("echo $(a;b)", False),
        ("cat 'a\nb'", False),
        ('echo "unbalanced', False),
        ("command -v python", False),  # a builtin, not a program
        ("no-such-program x", False),
    ],
)
def test_only_a_lone_simple_command_is_execed(command, execs):
    from bennettbot.runners.local import exec_form, program_finder

    is_program = program_finder(".", {})
    assert exec_form(command, is_program) == (f"exec {command}" if execs else command)


async def test_a_lone_command_runs_without_a_shell_left_behind(tmp_path):
    from bennettbot.runners.local import LocalRunner

    marker = tmp_path / "pid"
    spec = RunSpec(
        run_id=1,
        job_type="t",
        command=f"sh -c 'echo $PPID > {marker}; sleep 0.2'",
        cwd=tmp_path,
        log_dir=tmp_path / "logs",
        timeout_seconds=10,
    )
    task = asyncio.create_task(LocalRunner().run(spec))
    async with asyncio.timeout(10):
        while not marker.exists() or not marker.read_text().strip():
            await asyncio.sleep(0.01)
    parent = int(marker.read_text())
    # the job's parent is the bot itself: no /bin/sh in between
    assert parent == os.getpid()
    assert (await task).outcome.value == "succeeded"


async def test_echo_means_what_it_means_in_the_shell(tmp_path, work):
    spec = spec_for(tmp_path, "echo 'a\\nb'", env={"PATH": os.environ["PATH"]})
    assert (await LocalRunner().run(spec)).outcome == Outcome.SUCCEEDED
    assert spec.stdout_path.read_text() == "a\nb\n"  # dash's echo, as through sh


def _state(pid: int) -> str | None:
    """The process's state letter (``Z`` for a zombie), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


async def _gone(pid: int) -> None:
    async with asyncio.timeout(10):
        while _state(pid) is not None:
            await asyncio.sleep(0.01)


async def test_a_background_child_does_not_outlive_a_job_that_succeeded(tmp_path, work):
    spec = spec_for(
        tmp_path,
        f"sleep 300 > /dev/null 2>&1 & echo $! > {tmp_path}/child",
        env={"PATH": os.environ["PATH"]},
    )
    assert (await LocalRunner().run(spec)).outcome == Outcome.SUCCEEDED
    child = int((tmp_path / "child").read_text())
    await _gone(child)  # killed, and reaped (no zombie left either)


async def test_a_timed_out_job_leaves_no_process_and_no_zombie(tmp_path, work):
    spec = spec_for(
        tmp_path,
        f"sh -c 'sleep 300' & sleep 300 & echo $! $$ > {tmp_path}/pids; wait",
        env={"PATH": os.environ["PATH"]},
        timeout_seconds=0.5,
    )
    assert (await LocalRunner().run(spec)).outcome == Outcome.TIMED_OUT
    for pid in map(int, (tmp_path / "pids").read_text().split()):
        await _gone(pid)


async def test_a_stop_sends_sigterm_to_the_group_and_records_stopped(tmp_path, work):
    stop = asyncio.Event()
    spec = spec_for(
        tmp_path,
        f"trap 'echo got TERM; exit 143' TERM; sleep 300 & echo $! $$ > "
        f"{tmp_path}/pids; wait",
        env={"PATH": os.environ["PATH"]},
        stop=stop,
    )
    task = asyncio.create_task(LocalRunner(stop_grace=30).run(spec))
    async with asyncio.timeout(10):
        while not (tmp_path / "pids").exists() or not (tmp_path / "pids").read_text():
            await asyncio.sleep(0.01)
    stop.set()
    result = await asyncio.wait_for(task, 10)  # well within the grace: TERM did it

    assert result == RunResult(Outcome.STOPPED, message="stopped")
    assert "got TERM" in spec.stdout_path.read_text()
    assert "stopped" in spec.stderr_path.read_text()
    for pid in map(int, (tmp_path / "pids").read_text().split()):
        await _gone(pid)


async def test_a_job_that_ignores_sigterm_gets_sigkill_after_the_grace(tmp_path, work):
    stop = asyncio.Event()
    spec = spec_for(
        tmp_path,
        f"trap '' TERM; echo $$ > {tmp_path}/pid; while :; do sleep 0.05; done",
        env={"PATH": os.environ["PATH"]},
        stop=stop,
    )
    task = asyncio.create_task(LocalRunner(stop_grace=0.3).run(spec))
    pid_file = tmp_path / "pid"
    async with asyncio.timeout(10):  # the trap is set once the pid is written
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
    stopped_at = time.monotonic()
    stop.set()
    result = await asyncio.wait_for(task, 10)

    assert result.outcome == Outcome.STOPPED
    assert time.monotonic() - stopped_at >= 0.3  # TERM was ignored: KILL after
    await _gone(int(pid_file.read_text()))
