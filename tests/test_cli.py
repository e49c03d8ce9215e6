"""``python -m bennettbot check``: settings and job configuration, or what is wrong."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bennettbot.cli import main
from bennettbot.settings import SHIPPED_JOB_CONFIG, Settings
from conftest import NEEDED

FIXTURES = Path(__file__).parent / "fixtures" / "jobconfig"

ROLES = sorted(NEEDED)

FULL = {
    "SLACK_BOT_TOKEN": "xoxb-cli-test-9d2e",
    "SLACK_APP_TOKEN": "xapp-cli-test-9d2e",
    "SLACK_SIGNING_SECRET": "signing-cli-test-9d2e",
    "SLACK_APP_USERNAME": "bennett_bot",
    "SLACK_LOGS_CHANNEL": "#logs",
    "SLACK_TECH_SUPPORT_CHANNEL": "#tech-support",
    "GITHUB_WEBHOOK_SECRET": "github-cli-test-9d2e",
    "WEBHOOK_ORIGIN": "https://bot.example.org",
    "EBMBOT_WEBHOOK_SECRET": "ebmbot-cli-test-9d2e",
}


@pytest.fixture
def full_env(clean_env, monkeypatch):
    for name, value in FULL.items():
        monkeypatch.setenv(name, value)
    return clean_env


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- all good ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_check_ok(full_env, capsys, role):
    assert main(["--role", role, "check"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    output = lines(out)
    assert output[0] == f"settings: ok for role {role}"
    assert output[1] == f"job config: {SHIPPED_JOB_CONFIG}"
    namespaces = [
        line.strip().split(":")[0]
        for line in output
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert namespaces == [
        "test",
        "report (restricted)",
        "techsupport",
        "inbox",
    ]
    assert "  test: 6 jobs, 6 commands" in output
    assert not any("showlogs" in line for line in output)  # built in now
    assert output[2].startswith("local jobs get: PATH, HOME, USER, LOGNAME, LANG")
    assert "    env: DATA_TEAM_GITHUB_API_TOKEN" in output
    assert output.count("    env: GCP_CREDENTIALS_PATH, DB_PATH") == 2
    assert output[-1].startswith("database: ")


def test_check_default_role_is_all(full_env, capsys):
    assert main(["check"]) == 0
    out, _ = capsys.readouterr()
    assert "settings: ok for role all" in out


def test_check_another_valid_config(full_env, monkeypatch, capsys):
    monkeypatch.setenv("JOB_CONFIG_PATH", str(FIXTURES / "valid.toml"))
    assert main(["--role", "dispatcher", "check"]) == 0
    out, _ = capsys.readouterr()
    assert f"job config: {FIXTURES / 'valid.toml'}" in out
    assert "  op (restricted): 2 jobs, 5 commands, remote prod.example.org" in out
    assert "  test: 4 jobs, 4 commands" in out
    assert "  ci-2: 1 jobs, 1 commands" in out


def test_check_only_needs_what_the_role_needs(clean_env, monkeypatch, capsys):
    for name in NEEDED["web"]:
        monkeypatch.setenv(name, FULL[name])
    assert main(["--role", "web", "check"]) == 0
    assert main(["--role", "bot", "check"]) == 2


# --- missing or malformed variables -------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_check_missing_variables(clean_env, capsys, role):
    assert main(["--role", role, "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    problems = lines(err)
    named = [line.split(":", 1)[0] for line in problems]
    assert sorted(named) == sorted(NEEDED[role])  # one line per variable
    assert all("not set" in line for line in problems)


@pytest.mark.parametrize("role", ROLES)
def test_check_one_missing_variable(full_env, monkeypatch, capsys, role):
    name = sorted(NEEDED[role])[0]
    monkeypatch.delenv(name)
    assert main(["--role", role, "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = lines(err)
    assert line.startswith(f"{name}: not set")


def test_check_wrong_token_prefix(full_env, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-cli-test-9d2e")
    assert main(["--role", "bot", "check"]) == 2
    _, err = capsys.readouterr()
    assert lines(err) == ["SLACK_APP_TOKEN: should start with xapp-"]


@pytest.mark.parametrize(
    ("name", "value", "explanation"),
    [
        ("WEB_PORT", "abc", "integer"),
        ("WEB_PORT", "0", "greater than or equal to 1"),
        ("WEBHOOK_ORIGIN", "bot.example.org", "http://"),
    ],
)
def test_check_malformed_variable(
    full_env, monkeypatch, capsys, name, value, explanation
):
    monkeypatch.setenv(name, value)
    assert main(["--role", "web", "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = lines(err)
    assert line.startswith(f"{name}: ")
    assert explanation in line


def test_check_unknown_role(full_env, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--role", "nope", "check"])
    assert raised.value.code == 2
    assert "--role" in capsys.readouterr().err


# --- invalid job configuration ------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "namespace", "key"),
    [
        ("unknown_key_job", "test", "jobs.hello.report_stdot"),
        ("params_mismatch", "test", "slack[0] ('hello [who]')"),
        ("suppression_params", "op", "slack[1] ('deploy suppress from [start_at]')"),
        ("bad_action", "test", "slack[0] ('hello').action"),
        ("underscore_namespace", "my_team", "namespace name"),
    ],
)
def test_check_invalid_config(full_env, monkeypatch, capsys, fixture, namespace, key):
    path = FIXTURES / f"{fixture}.toml"
    monkeypatch.setenv("JOB_CONFIG_PATH", str(path))
    assert main(["--role", "dispatcher", "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = lines(err)
    assert line.startswith(f"{path}: [{namespace}]: ")
    assert key in line


def test_check_duplicate_commands_lists_each(full_env, monkeypatch, capsys):
    path = FIXTURES / "duplicate_commands.toml"
    monkeypatch.setenv("JOB_CONFIG_PATH", str(path))
    assert main(["check"]) == 2
    problems = lines(capsys.readouterr().err)
    assert len(problems) == 2
    assert all(line.startswith(f"{path}: [test]: slack[") for line in problems)
    assert all("is the same as" in line for line in problems)


def test_check_invalid_toml(full_env, monkeypatch, capsys):
    path = FIXTURES / "invalid_toml.toml"
    monkeypatch.setenv("JOB_CONFIG_PATH", str(path))
    assert main(["check"]) == 2
    [line] = lines(capsys.readouterr().err)
    assert line.startswith(f"{path}: invalid TOML: ")


def test_check_missing_config_file(full_env, monkeypatch, capsys):
    path = full_env / "missing.toml"
    monkeypatch.setenv("JOB_CONFIG_PATH", str(path))
    assert main(["check"]) == 2
    [line] = lines(capsys.readouterr().err)
    assert line.startswith(f"{path}: cannot read")


def test_check_reports_settings_and_config_problems_together(
    full_env, monkeypatch, capsys
):
    path = FIXTURES / "bad_report_format.toml"
    monkeypatch.setenv("JOB_CONFIG_PATH", str(path))
    monkeypatch.delenv("SLACK_LOGS_CHANNEL")
    assert main(["--role", "dispatcher", "check"]) == 2
    problems = lines(capsys.readouterr().err)
    assert len(problems) == 2
    assert problems[0].startswith("SLACK_LOGS_CHANNEL: not set")
    assert problems[1].startswith(f"{path}: [test]: jobs.hello.report_format: ")


def test_check_relative_config_path_from_dotenv(clean_env, capsys):
    (clean_env / "jobs.toml").write_text(
        (FIXTURES / "missing_job_type.toml").read_text()
    )
    (clean_env / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in FULL.items()) + "JOB_CONFIG_PATH=jobs.toml\n"
    )
    assert main(["check"]) == 2
    [line] = lines(capsys.readouterr().err)
    assert line.startswith(f"{Path.cwd() / 'jobs.toml'}: [test]: slack[1] ")


# --- the real command -------------------------------------------------------------


async def test_python_m_bennettbot_check_with_bad_config(tmp_path):
    path = FIXTURES / "unknown_key_command.toml"
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(FULL, JOB_CONFIG_PATH=str(path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bennettbot",
        "--role",
        "dispatcher",
        "check",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 2, err.decode()
    assert out == b""
    assert err.decode().splitlines() == [
        f"{path}: [test]: slack[0] ('hello').delay: unknown key"
    ]
    for name, value in FULL.items():
        if "TOKEN" in name or "SECRET" in name:
            assert value.encode() not in out + err


def test_check_opens_the_database(full_env, capsys, tmp_path):
    assert main(["--role", "dispatcher", "check"]) == 0
    assert "(not there yet" in capsys.readouterr().out
    database = tmp_path / "bennettbot.db"
    database.write_bytes(b"this is not a database, whatever its name says" * 100)
    assert main(["--role", "dispatcher", "check"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"DB_PATH: {database} is not a usable SQLite database (file is not a database)"
    )


def test_check_shows_each_schedules_next_time(full_env, monkeypatch, capsys):
    config = Path(__file__).parent / "fixtures" / "schedules.toml"
    monkeypatch.setenv("JOB_CONFIG_PATH", str(config))
    assert main(["--role", "dispatcher", "check"]) == 0
    out, _ = capsys.readouterr()
    assert (
        "    schedule: 'rota report' at '0 9 * * MON' (Europe/London) in #tech, "
        "next Mon "
    ) in out
    assert out.count("09:00 Europe/London") == 1
