"""Settings from the environment and ``.env``: defaults, per-role checks, secrets."""

# ruff: noqa: SIM300 - settings fields are UPPER_CASE, which ruff takes for constants

from pathlib import Path

import pytest

from bennettbot.cli import main
from bennettbot.settings import (
    SHIPPED_JOB_CONFIG,
    SHIPPED_WORKSPACE,
    Settings,
    SettingsError,
    load_settings,
)
from conftest import NEEDED

# Distinctive values, so that a leak is unmistakable.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-BOT-s3cr3t-1111-zq",
    "SLACK_APP_TOKEN": "xapp-APP-s3cr3t-2222-zq",
    "SLACK_SIGNING_SECRET": "SIGNING-s3cr3t-3333-zq",
    "GITHUB_WEBHOOK_SECRET": "GITHUB-s3cr3t-4444-zq",
    "EBMBOT_WEBHOOK_SECRET": "EBMBOT-s3cr3t-5555-zq",
    "DATA_TEAM_GITHUB_API_TOKEN": "ghp_DATA-s3cr3t-6666-zq",
}
FULL = {
    **SECRETS,
    "SLACK_APP_USERNAME": "bennett_bot",
    "SLACK_LOGS_CHANNEL": "#logs",
    "SLACK_TECH_SUPPORT_CHANNEL": "C0TECHSUPPORT",
    "WEBHOOK_ORIGIN": "https://bot.example.org",
}


@pytest.fixture
def full_env(clean_env, monkeypatch):
    for name, value in FULL.items():
        monkeypatch.setenv(name, value)
    return clean_env


def assert_no_secret(text: str) -> None:
    for value in SECRETS.values():
        assert value not in text
    assert "s3cr3t" not in text  # nor any recognisable part of one


# --- defaults -------------------------------------------------------------------


def test_defaults(clean_env):
    settings = load_settings()
    cwd = Path.cwd()
    assert settings.LOGS_DIR == cwd / "logs"
    assert settings.DB_PATH == cwd / "bennettbot.db"
    assert settings.FAB_WORKSPACE_DIR == cwd / "workspace-data"
    assert settings.BOT_CHECK_FILE == cwd / ".bot_startup_check"
    assert settings.JOB_CONFIG_PATH == SHIPPED_JOB_CONFIG
    assert SHIPPED_JOB_CONFIG.is_file()
    assert settings.WORKSPACE_DIR == SHIPPED_WORKSPACE
    assert SHIPPED_WORKSPACE.is_dir()
    home = clean_env / "home"
    assert settings.SSH_KEY_PATH == home / ".ssh" / "id_ed25519"
    assert settings.SSH_KNOWN_HOSTS == home / ".ssh" / "known_hosts"
    for path in (
        settings.LOGS_DIR,
        settings.DB_PATH,
        settings.FAB_WORKSPACE_DIR,
        settings.BOT_CHECK_FILE,
        settings.JOB_CONFIG_PATH,
        settings.WORKSPACE_DIR,
        settings.SSH_KEY_PATH,
        settings.SSH_KNOWN_HOSTS,
    ):
        assert path.is_absolute()
    assert settings.WEB_HOST == "0.0.0.0"
    assert settings.WEB_PORT == 9999
    assert settings.SLACK_API_URL == "https://slack.com/api/"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.HOST_LOGS_DIR == ""
    assert settings.host_logs_dir == str(cwd / "logs")
    assert settings.SLACK_BOT_TOKEN is None
    assert settings.GCP_CREDENTIALS_PATH is None
    assert settings.DATA_TEAM_GITHUB_API_TOKEN is None


def test_relative_paths_from_the_environment_are_made_absolute(clean_env, monkeypatch):
    monkeypatch.setenv("LOGS_DIR", "var/logs")
    monkeypatch.setenv("DB_PATH", "data/bot.db")
    monkeypatch.setenv("JOB_CONFIG_PATH", "jobs.toml")
    monkeypatch.setenv("SSH_KEY_PATH", "~/keys/id")
    settings = load_settings()
    cwd = Path.cwd()
    assert settings.LOGS_DIR == cwd / "var" / "logs"
    assert settings.DB_PATH == cwd / "data" / "bot.db"
    assert settings.JOB_CONFIG_PATH == cwd / "jobs.toml"
    assert settings.SSH_KEY_PATH == clean_env / "home" / "keys" / "id"
    assert settings.host_logs_dir == str(cwd / "var" / "logs")


def test_host_logs_dir_when_set(clean_env, monkeypatch):
    monkeypatch.setenv("LOGS_DIR", "/storage/logs")
    monkeypatch.setenv("HOST_LOGS_DIR", "/var/lib/dokku/data/storage/bennettbot/logs")
    settings = load_settings()
    assert settings.LOGS_DIR == Path("/storage/logs")
    assert settings.host_logs_dir == "/var/lib/dokku/data/storage/bennettbot/logs"


def test_environment_values(clean_env, monkeypatch):
    monkeypatch.setenv("WEB_PORT", "8080")
    monkeypatch.setenv("WEB_HOST", "127.0.0.1")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:5555/api")
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", "/secrets/gcp.json")
    settings = load_settings()
    assert settings.WEB_PORT == 8080
    assert settings.WEB_HOST == "127.0.0.1"
    assert settings.slack_api_url == "http://127.0.0.1:5555/api/"
    assert settings.GCP_CREDENTIALS_PATH == Path("/secrets/gcp.json")


def test_overrides(clean_env):
    settings = load_settings(WEB_PORT=1234, SLACK_APP_USERNAME="bot")
    assert settings.WEB_PORT == 1234
    assert settings.SLACK_APP_USERNAME == "bot"


def test_settings_are_frozen(clean_env):
    settings = load_settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        settings.WEB_PORT = 1  # type: ignore[misc]


# --- .env -----------------------------------------------------------------------


def test_dotenv_file_is_honoured(clean_env):
    (clean_env / ".env").write_text(
        "SLACK_APP_USERNAME=from_dotenv\n"
        "WEB_PORT=8123\n"
        f"SLACK_BOT_TOKEN={SECRETS['SLACK_BOT_TOKEN']}\n"
        "# a comment\n"
        "UNRELATED_VARIABLE=ignored\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.SLACK_APP_USERNAME == "from_dotenv"
    assert settings.WEB_PORT == 8123
    assert settings.SLACK_BOT_TOKEN is not None
    assert settings.SLACK_BOT_TOKEN.get_secret_value() == SECRETS["SLACK_BOT_TOKEN"]


def test_environment_wins_over_dotenv(clean_env, monkeypatch):
    (clean_env / ".env").write_text("SLACK_APP_USERNAME=from_dotenv\n")
    monkeypatch.setenv("SLACK_APP_USERNAME", "from_environment")
    assert load_settings().SLACK_APP_USERNAME == "from_environment"


def test_dotenv_can_satisfy_a_role(clean_env):
    (clean_env / ".env").write_text(
        "".join(f"{name}={FULL[name]}\n" for name in sorted(NEEDED["web"]))
    )
    settings = load_settings("web")
    assert settings.problems("web") == []


# --- what each role needs ---------------------------------------------------------


@pytest.mark.parametrize("role", ["all", "bot", "dispatcher", "web"])
def test_missing_variables_one_line_each(clean_env, role):
    problems = Settings().problems(role)
    named = [line.split(":", 1)[0] for line in problems]
    assert sorted(named) == sorted(NEEDED[role])  # each once, nothing else
    for line in problems:
        assert "\n" not in line
        assert "not set" in line
        assert "role" in line
    with pytest.raises(SettingsError) as raised:
        load_settings(role)
    assert raised.value.problems == problems
    assert str(raised.value) == "\n".join(problems)


def test_missing_line_names_the_role_that_needs_it(clean_env):
    [line] = [
        p for p in Settings().problems("web") if p.startswith("GITHUB_WEBHOOK_SECRET")
    ]
    assert line == "GITHUB_WEBHOOK_SECRET: not set (needed by the web role)"


@pytest.mark.parametrize("role", ["all", "bot", "dispatcher", "web"])
def test_everything_set(full_env, role):
    settings = load_settings(role)
    assert settings.problems(role) == []


@pytest.mark.parametrize("name", sorted(NEEDED["all"]))
def test_one_missing_variable(full_env, monkeypatch, name):
    monkeypatch.delenv(name)
    problems = Settings().problems("all")
    assert len(problems) == 1
    assert problems[0].startswith(f"{name}: not set")
    for role, needed in NEEDED.items():
        assert bool(Settings().problems(role)) == (name in needed)


@pytest.mark.parametrize("name", sorted(NEEDED["all"]))
def test_empty_counts_as_missing(full_env, monkeypatch, name):
    monkeypatch.setenv(name, "")
    [line] = Settings().problems("all")
    assert line.startswith(f"{name}: not set")


def test_optional_variables_are_not_needed(full_env, monkeypatch):
    monkeypatch.delenv("DATA_TEAM_GITHUB_API_TOKEN")
    settings = load_settings("all")
    assert settings.DATA_TEAM_GITHUB_API_TOKEN is None
    assert settings.GCP_CREDENTIALS_PATH is None
    for role in NEEDED:
        assert settings.problems(role) == []


# --- malformed values -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "prefix"),
    [
        ("SLACK_BOT_TOKEN", "xapp-BOT-s3cr3t-1111-zq", "xoxb-"),
        ("SLACK_BOT_TOKEN", "BOT-s3cr3t-1111-zq", "xoxb-"),
        ("SLACK_APP_TOKEN", "xoxb-APP-s3cr3t-2222-zq", "xapp-"),
        ("SLACK_APP_TOKEN", "APP-s3cr3t-2222-zq", "xapp-"),
    ],
)
def test_token_prefix(full_env, monkeypatch, name, value, prefix):
    monkeypatch.setenv(name, value)
    [line] = Settings().problems("bot")
    assert line == f"{name}: should start with {prefix}"
    assert value not in line
    with pytest.raises(SettingsError) as raised:
        load_settings("bot")
    assert raised.value.problems == [line]


def test_app_token_prefix_is_not_checked_for_roles_that_do_not_need_it(
    full_env, monkeypatch
):
    monkeypatch.setenv("SLACK_APP_TOKEN", "not-a-token")
    assert Settings().problems("web") == []
    assert Settings().problems("dispatcher") == []


@pytest.mark.parametrize(
    ("value", "explanation"),
    [
        ("abc", "integer"),
        ("0", "greater than or equal to 1"),
        ("-1", "greater than or equal to 1"),
        ("65536", "less than or equal to 65535"),
        ("80.5", "integer"),
        ("", "integer"),
    ],
)
def test_malformed_web_port(clean_env, monkeypatch, value, explanation):
    monkeypatch.setenv("WEB_PORT", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    [line] = raised.value.problems
    assert line.startswith("WEB_PORT: ")
    assert explanation in line


def test_malformed_web_port_in_dotenv(clean_env):
    (clean_env / ".env").write_text("WEB_PORT=eighty\n")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    [line] = raised.value.problems
    assert line.startswith("WEB_PORT: ")


@pytest.mark.parametrize("name", ["WEBHOOK_ORIGIN", "SLACK_API_URL"])
@pytest.mark.parametrize("value", ["bot.example.org", "ftp://bot.example.org", "//x"])
def test_url_without_scheme(clean_env, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    [line] = raised.value.problems
    assert line.startswith(f"{name}: ")
    assert "http://" in line
    assert "https://" in line


def test_several_malformed_values_are_all_listed(clean_env, monkeypatch):
    monkeypatch.setenv("WEB_PORT", "abc")
    monkeypatch.setenv("WEBHOOK_ORIGIN", "bot.example.org")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    named = sorted(line.split(":", 1)[0] for line in raised.value.problems)
    assert named == ["WEBHOOK_ORIGIN", "WEB_PORT"]


# --- secrets never shown ----------------------------------------------------------


def test_secrets_not_in_repr_or_str(full_env):
    settings = load_settings("all")
    for name, value in SECRETS.items():
        assert getattr(settings, name).get_secret_value() == value
    assert_no_secret(repr(settings))
    assert_no_secret(str(settings))
    assert_no_secret(f"{settings!r} {settings}")
    assert_no_secret(repr(settings.model_dump()))
    assert_no_secret(settings.model_dump_json())


def test_secrets_not_in_problem_lines(full_env, monkeypatch):
    # the tokens have the wrong prefixes: their values must still not be shown
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xapp-BOT-s3cr3t-1111-zq")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-APP-s3cr3t-2222-zq")
    monkeypatch.setenv("WEB_PORT", "EBMBOT-s3cr3t-5555-zq")
    with pytest.raises(SettingsError) as raised:
        load_settings("all")
    assert_no_secret(str(raised.value))
    monkeypatch.delenv("WEB_PORT")
    problems = Settings().problems("all")
    assert len(problems) == 2
    assert_no_secret("\n".join(problems))
    with pytest.raises(SettingsError) as raised:
        load_settings("all")
    assert_no_secret(str(raised.value))


def test_secrets_not_in_check_output(full_env, capsys):
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert "settings: ok" in out
    assert_no_secret(out + err)


def test_secrets_not_in_check_output_on_problems(full_env, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xapp-BOT-s3cr3t-1111-zq")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-APP-s3cr3t-2222-zq")
    monkeypatch.delenv("SLACK_LOGS_CHANNEL")
    assert main(["check"]) == 2
    out, err = capsys.readouterr()
    assert "SLACK_BOT_TOKEN" in err
    assert "SLACK_APP_TOKEN" in err
    assert "SLACK_LOGS_CHANNEL" in err
    assert_no_secret(out + err)


def test_a_malformed_variable_stops_only_the_roles_that_read_it(full_env, monkeypatch):
    monkeypatch.setenv("WEB_PORT", "abc")
    settings = load_settings("dispatcher")  # the dispatcher never reads WEB_PORT
    assert settings.WEB_PORT == 9999
    with pytest.raises(SettingsError) as caught:
        load_settings("web")
    assert [p.split(":")[0] for p in caught.value.problems] == ["WEB_PORT"]


def test_an_unknown_home_folder_is_a_problem_not_a_crash(clean_env, monkeypatch):
    monkeypatch.setenv("SSH_KEY_PATH", "~nosuchuser-bennettbot/key")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith("SSH_KEY_PATH: ")


def test_job_settings_are_passed_to_jobs_from_env_or_dotenv(clean_env, monkeypatch):
    (clean_env / ".env").write_text("DATA_TEAM_GITHUB_API_TOKEN=ghp-from-dotenv\n")
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", "secrets/gcp.json")
    values = load_settings().for_jobs()
    assert values["DATA_TEAM_GITHUB_API_TOKEN"] == "ghp-from-dotenv"
    # jobs run in their namespace's folder: relative paths are made absolute
    assert values["GCP_CREDENTIALS_PATH"] == str(clean_env / "secrets" / "gcp.json")
    assert values["DB_PATH"] == str(clean_env / "bennettbot.db")
