"""The dispatcher with real subprocesses: starting, recording, reporting."""

from __future__ import annotations

import asyncio
import json
import sys
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aioresponses import aioresponses

from bennettbot import messages
from bennettbot.fabfile import fetch_fabfile
from bennettbot.jobrun import _explanation
from bennettbot.models import Outcome, Requester, RunResult
from bennettbot.store import Store
from conftest import ALICE, job_config, make_rig, wait_until

CONFIG = job_config(
    """
[test]
[test.jobs.echo]
run_args_template = "echo {word}"
report_stdout = true
[test.jobs.quiet]
run_args_template = "true"
[test.jobs.silent]
run_args_template = "true"
report_success = false
[test.jobs.empty]
run_args_template = "true"
report_stdout = true
[test.jobs.fail]
run_args_template = "echo oops >&2; exit 3"
[test.jobs.explain]
run_args_template = "echo warning >&2; echo 'error: the widget is missing' >&2; exit 1"
[test.jobs.slow]
run_args_template = "sleep 30"
timeout_seconds = 0.3
[test.jobs.blocks]
run_args_template = "printf '%s' {json}"
report_stdout = true
report_format = "blocks"
[test.jobs.code]
run_args_template = "python3 -c 'import sys; print(\\"x\\" * int(sys.argv[1]))' {n}"
report_stdout = true
report_format = "code"
[test.jobs.file]
run_args_template = "echo data"
report_stdout = true
report_format = "file"
[test.jobs.env]
run_args_template = "echo $EBMBOT_CALLBACK_URL; echo $PYTHONPATH; pwd"
report_stdout = true
[test.jobs.wait]
run_args_template = "touch {name}.started; while [ ! -e release ]; do sleep 0.01; done"
[test.jobs.wait2]
run_args_template = "touch {name}.started; while [ ! -e release ]; do sleep 0.01; done"

[fab]
fabfile = "https://example.org/fabfile.py"
[fab.jobs.show]
run_args_template = "cat fabfile.py"
report_stdout = true
"""
)


@pytest.fixture
def rig(store, clock, tmp_path):
    return make_rig(store, clock, tmp_path, CONFIG)


async def run_job(rig, job_type, args=None, requester=ALICE):
    await rig.store.schedule_job(job_type, args or {}, requester, rig.clock.now())
    await rig.dispatcher.run_once()
    await rig.dispatcher.wait_idle(10)
    return rig.notifier.notices


async def test_start_notice_then_stdout_reported_in_the_thread(rig):
    notices = await run_job(rig, "test_echo", {"word": "hello"})
    assert [(n.kind, n.text) for n in notices] == [
        ("logs", "Command `test_echo` about to start"),
        ("report", "hello\n"),
    ]
    assert notices[1].job.requester == ALICE


async def test_success_without_stdout_says_succeeded(rig):
    notices = await run_job(rig, "test_quiet")
    assert notices[-1].text == "Command `test_quiet` succeeded"


async def test_report_success_false_says_nothing_more(rig):
    notices = await run_job(rig, "test_silent")
    assert [n.kind for n in notices] == ["logs"]


async def test_empty_stdout_says_no_output_found(rig):
    notices = await run_job(rig, "test_empty")
    assert notices[-1].text == "No output found"


async def test_failure_names_job_log_folder_and_showlogs(rig):
    notices = await run_job(rig, "test_fail")
    failure = notices[-1]
    assert failure.kind == "failure"
    [run] = await rig.store.runs()
    assert run.outcome is Outcome.FAILED and run.exit_status == 3
    assert "`test_fail` failed with exit status 3" in failure.text
    assert f"/host/logs/{run.log_dir}" in failure.text
    assert f"@bennettbot showlogs tail stderr {run.log_dir}" in failure.text
    stderr = rig.folders.logs / run.log_dir / "stderr"
    assert stderr.read_text() == "oops\n"
    assert run.log_dir.startswith("test_fail/20260105-0900")
    # stderr may hold anything: only a line saying "error: …" is quoted
    assert "oops" not in failure.text


async def test_a_job_explains_its_failure_with_a_last_error_line(rig):
    notices = await run_job(rig, "test_explain")
    assert notices[-1].text.splitlines()[:2] == [
        "Command `test_explain` failed with exit status 1.",
        "> error: the widget is missing",
    ]


async def test_the_quoted_explanation_is_the_last_line_escaped_and_cut(tmp_path):
    stderr = tmp_path / "stderr"
    stderr.write_text("x" * 10_000 + "\nTraceback…\nerror: <@U1> & <!here>\n\n")
    assert _explanation(stderr) == "error: <@U1> & <!here>"
    assert _explanation(tmp_path / "missing") == ""
    stderr.write_text("error: first\n+ curl https://user:secret@example.org\n")
    assert _explanation(stderr) == ""
    result = RunResult(Outcome.FAILED, exit_status=1)
    text = messages.failed("t", result, "/h", "t/1", "bot", last_words="<@U1> & x")
    assert "> &lt;@U1&gt; &amp; x" in text.splitlines()
    long = messages.failed("t", result, "/h", "", "bot", last_words="y" * 1000)
    assert len(long.splitlines()[1]) == 2 + messages.MAX_LAST_WORDS


async def test_timeout_is_killed_and_reported(rig):
    notices = await run_job(rig, "test_slow")
    assert "timed out after 0.3 s" in notices[-1].text
    [run] = await rig.store.runs()
    assert run.outcome is Outcome.TIMED_OUT


async def test_blocks_are_posted_when_valid_and_refused_otherwise(rig):
    blocks = json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}])
    notices = await run_job(rig, "test_blocks", {"json": blocks})
    assert (notices[-1].kind, notices[-1].format) == ("report", "blocks")
    assert json.loads(notices[-1].text) == json.loads(blocks)
    notices = await run_job(rig, "test_blocks", {"json": "not json"})
    assert notices[-1].kind == "failure"
    assert "not valid Slack blocks" in notices[-1].text


async def test_code_becomes_a_file_when_too_long_for_a_message(rig):
    notices = await run_job(rig, "test_code", {"n": "10"})
    assert (notices[-1].format, notices[-1].text) == ("code", "x" * 10 + "\n")
    notices = await run_job(rig, "test_code", {"n": "5000"})
    assert notices[-1].format == "file"
    notices = await run_job(rig, "test_file")
    assert (notices[-1].format, notices[-1].text) == ("file", "data\n")


async def test_arguments_cannot_inject_commands(rig, tmp_path):
    marker = tmp_path / "pwned"
    word = f"x; touch {marker} $(touch {marker}) `touch {marker}`"
    notices = await run_job(rig, "test_echo", {"word": word})
    assert notices[-1].text == word + "\n"
    assert not marker.exists()


async def test_jobs_get_callback_url_pythonpath_and_namespace_folder(
    store, clock, tmp_path
):
    rig = make_rig(
        store,
        clock,
        tmp_path,
        CONFIG,
        callback_url=lambda job, timeout: f"cb:{job.id}:{timeout:g}",
    )
    notices = await run_job(rig, "test_env")
    callback, pythonpath, cwd = notices[-1].text.splitlines()
    [run] = await store.runs()
    assert callback == f"cb:{run.job_id}:3600"  # the job's timeout, for the token
    assert pythonpath.split(":")[0] == str(rig.folders.workspace)
    # no shipped folder for "test" here, so it gets a writable one on demand
    assert cwd == str(rig.folders.fab_workspace / "test")


async def test_fabfile_is_fetched_before_the_run_and_failure_keeps_last_copy(
    store, clock, tmp_path
):
    async with aiohttp.ClientSession() as session:
        rig = make_rig(
            store,
            clock,
            tmp_path,
            CONFIG,
            fetch_fabfile=partial(fetch_fabfile, session),
        )
        with aioresponses() as mocked:
            url = "https://example.org/fabfile.py"
            mocked.get(url, body="# version 1\n")
            notices = await run_job(rig, "fab_show")
            assert notices[-1].text == "# version 1\n"
            mocked.get(url, status=404)
            notices = await run_job(rig, "fab_show")
    assert notices[-1].text == "# version 1\n"
    [warning] = [n for n in notices if "Could not fetch the fabfile" in n.text]
    assert warning.kind == "logs" and "404" in warning.text


async def test_different_types_run_concurrently_and_one_type_waits(rig):
    folder = rig.folders.fab_workspace / "test"
    await rig.queue.schedule_job("test_wait", {"name": "a"}, ALICE)
    await rig.queue.schedule_job("test_wait2", {"name": "b"}, ALICE)
    await rig.dispatcher.run_once()
    # both are running at once: neither can finish before "release" exists
    await wait_until(lambda: (folder / "a.started").exists())
    await wait_until(lambda: (folder / "b.started").exists())
    result = await rig.queue.schedule_job("test_wait", {"name": "c"}, ALICE)
    assert result.running_job_id is not None
    await rig.dispatcher.run_once()
    assert rig.dispatcher.running == 2
    assert not (folder / "c.started").exists()
    (folder / "release").touch()
    await rig.dispatcher.wait_idle(10)
    await rig.dispatcher.run_once()  # the run loop would do this when woken
    await rig.dispatcher.wait_idle(10)
    assert (folder / "c.started").exists()
    assert [r.outcome for r in await rig.store.runs()] == [Outcome.SUCCEEDED] * 3


async def test_stop_kills_running_jobs_after_grace_and_reports_them(rig):
    await rig.store.schedule_job("test_wait", {"name": "x"}, ALICE, rig.clock.now())
    await rig.dispatcher.run_once()
    folder = rig.folders.fab_workspace / "test"
    await wait_until(lambda: (folder / "x.started").exists())
    await rig.dispatcher.stop(grace=0.1)
    [run] = await rig.store.runs()
    assert run.outcome is Outcome.INTERRUPTED
    assert "interrupted" in rig.notifier.notices[-1].text
    assert await rig.store.list_jobs() == []


async def test_interrupted_runs_are_reported_at_start(tmp_path, clock):
    dead = await Store.open(tmp_path / "bot.db")
    await dead.schedule_job("test_echo", {"word": "x"}, ALICE, clock.now())
    [job] = await dead.reserve_due(clock.now())
    await dead.start_run(job, "test_echo/x")
    await dead.close()
    store = await Store.open(tmp_path / "bot.db")
    rig = make_rig(store, clock, tmp_path, CONFIG)
    await rig.dispatcher.recover()
    [notice] = rig.notifier.notices
    assert notice.kind == "failure" and notice.job.requester == ALICE
    assert "`test_echo` was interrupted" in notice.text
    await store.close()


async def test_run_loop_wakes_at_once_when_queued_in_process(store, tmp_path):
    from bennettbot.models import SystemClock

    rig = make_rig(store, SystemClock(), tmp_path, CONFIG, poll_interval=3600)
    loop_task = asyncio.create_task(rig.dispatcher.run())
    await rig.queue.schedule_job("test_echo", {"word": "now"}, ALICE)
    await rig.notifier.wait_for(lambda ns: any(n.kind == "report" for n in ns), 5)
    await rig.dispatcher.stop()
    await loop_task


async def test_run_loop_sleeps_until_the_due_time(store, tmp_path):
    from bennettbot.models import SystemClock

    clock = SystemClock()
    rig = make_rig(store, clock, tmp_path, CONFIG, poll_interval=3600)
    loop_task = asyncio.create_task(rig.dispatcher.run())
    try:
        result = await rig.queue.schedule_job(
            "test_echo", {"word": "later"}, ALICE, 0.2
        )
        await rig.notifier.wait_for(lambda ns: any(n.kind == "report" for n in ns), 5)
        [run] = await store.runs()
        assert run.started_at >= result.start_after
    finally:
        await rig.dispatcher.stop()
        await loop_task


async def test_a_job_queued_by_another_process_starts_within_a_second(store, tmp_path):
    from bennettbot.models import SystemClock

    rig = make_rig(store, SystemClock(), tmp_path, CONFIG)  # polls every second
    loop_task = asyncio.create_task(rig.dispatcher.run())
    db = tmp_path / "bot.db"
    script = (
        "import asyncio, datetime, sys\n"
        "from bennettbot.store import Store\n"
        "from bennettbot.models import Requester\n"
        "async def main():\n"
        f"    s = await Store.open({str(db)!r})\n"
        "    now = datetime.datetime.now(datetime.UTC)\n"
        "    await s.schedule_job('test_echo', {'word': 'other'}, Requester(), now)\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    queued = asyncio.get_running_loop().time()
    await rig.notifier.wait_for(lambda ns: any(n.kind == "report" for n in ns), 5)
    [run] = await store.runs()
    assert run.outcome is Outcome.SUCCEEDED
    # one poll interval (1 s) plus the run, with room for a loaded machine
    assert asyncio.get_running_loop().time() - queued < 3
    await rig.dispatcher.stop()
    await loop_task


async def test_a_dm_job_keeps_its_requester(rig):
    dm = Requester(user="U9", channel="D9", thread_ts="1.2", is_im=True)
    notices = await run_job(rig, "test_fail", requester=dm)
    assert notices[-1].job.requester.is_im


async def test_python_in_a_job_is_the_bots_interpreter(store, clock, tmp_path):
    config = job_config(
        '[py]\n[py.jobs.which]\nrun_args_template = "command -v python"\n'
        "report_stdout = true\n"
    )
    rig = make_rig(store, clock, tmp_path, config)
    notices = await run_job(rig, "py_which")
    assert Path(notices[-1].text.strip()).parent == Path(sys.executable).parent


async def test_job_settings_reach_the_jobs_environment(store, clock, tmp_path):
    config = job_config(
        '[t]\nenv = ["GCP_CREDENTIALS_PATH"]\n'
        '[t.jobs.env]\nrun_args_template = "echo $GCP_CREDENTIALS_PATH"\n'
        "report_stdout = true\n"
    )
    rig = make_rig(
        store, clock, tmp_path, config, job_env={"GCP_CREDENTIALS_PATH": "/c.json"}
    )
    notices = await run_job(rig, "t_env")
    assert notices[-1].text == "/c.json\n"


async def test_a_run_that_cannot_be_set_up_is_reported_and_unblocks_its_type(
    store, clock, tmp_path
):
    rig = make_rig(store, clock, tmp_path, CONFIG)
    rig.folders.logs.parent.mkdir(parents=True, exist_ok=True)
    rig.folders.logs.write_text("not a folder")  # LOGS_DIR is a file
    notices = await run_job(rig, "test_quiet")
    assert notices[-1].kind == "failure"
    assert "could not run: it could not be set up" in notices[-1].text
    assert await store.list_jobs() == []
    rig.folders.logs.unlink()
    notices = await run_job(rig, "test_quiet")
    assert notices[-1].text == "Command `test_quiet` succeeded"


async def test_stop_waits_for_a_pass_in_progress(store, clock, tmp_path):
    rig = make_rig(store, clock, tmp_path, CONFIG)
    await store.schedule_job("test_wait", {"name": "s"}, ALICE, clock.now())
    in_pass = asyncio.create_task(rig.dispatcher.run_once())
    await asyncio.sleep(0)  # the pass holds its lock, reserving
    await rig.dispatcher.stop(grace=0.1)
    await in_pass
    assert rig.dispatcher.running == 0  # the job it started was stopped too
    [run] = await store.runs()
    assert run.outcome is Outcome.INTERRUPTED


async def test_a_run_that_ends_while_the_database_is_locked_is_recorded_later(
    tmp_path, clock
):
    import aiosqlite
    from structlog.testing import capture_logs

    store = await Store.open(tmp_path / "bot.db", busy_timeout_ms=50)
    go, started = tmp_path / "go", tmp_path / "started"
    config = job_config(
        f'[t]\n[t.jobs.wait]\nrun_args_template = "touch {started}; '
        f'until [ -e {go} ]; do sleep 0.01; done; echo done"\nreport_stdout = true\n'
    )
    rig = make_rig(store, clock, tmp_path, config)
    await store.schedule_job("t_wait", {}, ALICE, clock.now())
    await rig.dispatcher.run_once()
    await wait_until(started.exists)  # its run is recorded: only its end is left
    locker = await aiosqlite.connect(tmp_path / "bot.db")
    try:
        with capture_logs() as logs:
            await locker.execute("BEGIN EXCLUSIVE")  # longer than the busy timeout
            go.touch()
            await wait_until(
                lambda: sum(e["event"] == "db_write_failed" for e in logs) >= 1
            )
            [run] = await store.runs()  # WAL: reading still works
            assert (
                run.outcome is Outcome.RUNNING and rig.notifier.of_kind("report") == []
            )
            await locker.commit()
            notices = await rig.notifier.wait_for(
                lambda ns: any(n.kind == "report" for n in ns)
            )
        [run] = await store.runs()
        assert run.outcome is Outcome.SUCCEEDED
        assert [n.text for n in notices if n.kind == "report"] == ["done\n"]
        assert any(e["event"] == "db_write_done" for e in logs)
        assert await store.list_jobs() == []  # its type is free again
    finally:
        await locker.close()
        await store.close()
