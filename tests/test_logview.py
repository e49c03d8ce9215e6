"""showlogs' reading of log files: bounded, inside LOGS_DIR only."""

from __future__ import annotations

import os

import pytest

from bennettbot import logview
from bennettbot.logview import LogError, head, log_file, tail, whole

RUN = "test_hello/20261130-120000"


@pytest.fixture
def logs(tmp_path):
    root = tmp_path / "logs"
    (root / RUN).mkdir(parents=True)
    (root / RUN / "stdout").write_text("".join(f"out {i}\n" for i in range(1, 51)))
    (root / RUN / "stderr").write_text("")
    return root


@pytest.mark.parametrize(
    "given",
    [RUN, RUN + "/", "/srv/bot/logs/" + RUN, "`/srv/bot/logs/" + RUN + "`"],
)
def test_the_run_folder_as_given_or_as_failure_reports_print_it(logs, given):
    assert log_file(logs, "/srv/bot/logs", given, "output") == (
        logs.resolve() / RUN / "stdout"
    )


def test_the_logs_dir_itself_as_a_prefix(logs):
    assert log_file(logs, "", f"{logs}/{RUN}", "error").name == "stderr"


@pytest.mark.parametrize(
    "given", ["../../etc", "/etc", "test_hello/../../..", "", "..", "test_hello/x"]
)
def test_nothing_outside_the_logs_dir_or_missing(logs, given):
    with pytest.raises(LogError):
        log_file(logs, "/srv/bot/logs", given, "stdout")


def test_a_symlink_out_of_the_logs_dir_is_refused(logs, tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "stdout").write_text("token")
    os.symlink(tmp_path / "secret", logs / "test_hello" / "sneaky")
    with pytest.raises(LogError, match="not a run's log folder"):
        log_file(logs, "", "test_hello/sneaky", "stdout")


def test_head_and_tail_give_20_lines(logs):
    path = logs / RUN / "stdout"
    assert head(path) == "".join(f"out {i}\n" for i in range(1, 21))
    assert tail(path) == "".join(f"out {i}\n" for i in range(31, 51))


def test_a_huge_single_line_is_read_only_in_part(logs):
    path = logs / RUN / "stdout"
    path.write_bytes(b"x" * (3 * logview.READ_BYTES) + b"\nlast\n")
    assert len(head(path)) == logview.READ_BYTES
    assert tail(path) == "last\n"  # the cut first line is dropped


def test_all_is_capped_and_says_so(logs, monkeypatch):
    monkeypatch.setattr(logview, "ALL_MAX_BYTES", 100)
    path = logs / RUN / "stdout"
    text, cut = whole(path)
    assert len(text) == 100 and cut
    path.write_text("short\n")
    assert whole(path) == ("short\n", False)


def test_undecodable_bytes_are_replaced(logs):
    path = logs / RUN / "stdout"
    path.write_bytes(b"caf\xe9\n")
    assert head(path) == "caf\ufffd\n"
