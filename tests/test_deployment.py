"""Procfile, app.json and docker-compose.yaml held against the CLI; the
healthchecks run for real in both states."""

from __future__ import annotations

import asyncio
import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bennettbot.cli import build_parser
from bennettbot.emulator.harness import free_port, service_environment
from bennettbot.health import heartbeat_name
from bennettbot.store import Store
from processes import DISPATCHER_ENV, start

ROOT = Path(__file__).resolve().parents[1]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def cli_args(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "bennettbot"], command
    return words[3:]


def test_the_procfile_has_one_process_type_per_role_and_a_release_step():
    processes = procfile()
    assert set(processes) == {"release", "bot", "dispatcher", "web"}
    for role in ("bot", "dispatcher", "web"):
        args = build_parser().parse_args(cli_args(processes[role]))
        assert (args.role, args.command) == (role, None)
    assert build_parser().parse_args(cli_args(processes["release"])).command == (
        "release"
    )


def test_app_json_healthchecks_exist_for_every_role_and_parse():
    checks = json.loads((ROOT / "app.json").read_text())["healthchecks"]
    assert set(checks) == {"web", "bot", "dispatcher"}
    assert checks["web"][0]["path"] == "/check/"
    for role in ("bot", "dispatcher"):
        command = checks[role][0]["command"]
        args = build_parser().parse_args(command[3:])
        assert command[:3] == ["python", "-m", "bennettbot"]
        assert (args.command, args.role) == ("healthcheck", role)


async def healthcheck(tmp_path: Path, role: str, **env: str) -> tuple[int, str]:
    process = await start(
        tmp_path,
        "--role",
        role,
        "healthcheck",
        env=service_environment(tmp_path, **env),
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, (out + err).decode()


async def test_bot_healthcheck_follows_the_check_file_and_release(tmp_path):
    check = tmp_path / "check"
    status, said = await healthcheck(tmp_path, "bot", BOT_CHECK_FILE=str(check))
    assert status == 1 and "not connected yet" in said
    check.touch()
    assert (await healthcheck(tmp_path, "bot", BOT_CHECK_FILE=str(check)))[0] == 0
    release = await start(
        tmp_path,
        "release",
        env=service_environment(tmp_path, BOT_CHECK_FILE=str(check)),
    )
    assert await asyncio.wait_for(release.wait(), 30) == 0
    assert not check.exists()


async def test_dispatcher_healthcheck_follows_the_heartbeat(tmp_path):
    status, said = await healthcheck(tmp_path, "dispatcher")
    assert status == 1 and "no database" in said
    store = await Store.open(tmp_path / "bot.db")
    await store.beat("dispatcher@another-container", datetime.now(UTC))
    status, said = await healthcheck(tmp_path, "dispatcher")
    assert status == 1 and "no heartbeat" in said  # not passed on another's
    own = heartbeat_name("dispatcher")
    await store.beat(own, datetime.now(UTC) - timedelta(minutes=5))
    status, said = await healthcheck(tmp_path, "dispatcher")
    assert status == 1 and "last heartbeat" in said
    await store.beat(own, datetime.now(UTC))
    assert (await healthcheck(tmp_path, "dispatcher"))[0] == 0
    await store.close()


async def test_a_running_dispatcher_is_healthy(tmp_path):
    env = service_environment(tmp_path, **DISPATCHER_ENV)
    process = await start(tmp_path, "--role", "dispatcher", env=env)
    try:
        async with asyncio.timeout(20):
            while (await healthcheck(tmp_path, "dispatcher"))[0] != 0:
                await asyncio.sleep(0.1)
    finally:
        process.terminate()
        await process.communicate()
    assert process.returncode == 0


async def test_web_healthcheck_asks_the_server(tmp_path):
    port = str(free_port())
    status, said = await healthcheck(tmp_path, "web", WEB_PORT=port)
    assert status == 1 and "did not answer" in said
    env = service_environment(
        tmp_path,
        **DISPATCHER_ENV,
        GITHUB_WEBHOOK_SECRET="s",
        WEB_HOST="127.0.0.1",
        WEB_PORT=port,
    )
    process = await start(tmp_path, "--role", "web", env=env)
    try:
        async with asyncio.timeout(20):
            while (await healthcheck(tmp_path, "web", WEB_PORT=port))[0] != 0:
                await asyncio.sleep(0.1)
    finally:
        process.terminate()
        await process.communicate()
    assert process.returncode == 0


def test_compose_services_run_commands_the_cli_knows():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is None:
            continue
        words = command if isinstance(command, list) else shlex.split(command)
        build_parser().parse_args(words[3:])  # exits on an unknown command
        assert words[:3] == ["python", "-m", "bennettbot"], name
        check = service.get("healthcheck", {}).get("test")
        if check:
            words = check[1:] if check[0] in ("CMD", "CMD-SHELL") else check
            assert words[:3] == ["python", "-m", "bennettbot"], name
            build_parser().parse_args(words[3:])
    assert set(compose["services"]) >= {"dev", "bot", "dispatcher", "web"}
    assert compose["services"]["dev"]["command"][3:] == ["demo"]


def test_pre_commit_runs_the_linters_ci_runs():
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff", "ruff-format", "mypy"}
    ci = (ROOT / ".ci" / "run").read_text()
    for hook in hooks.values():
        tool = hook["entry"].removeprefix(".venv/bin/").split()[0]
        assert f'"$VENV/bin/{tool}"' in ci, tool
