"""``python -m bennettbot``: run roles, check the configuration, or try the demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from . import jobenv, messages
from .jobconfig import JobConfigError, load_job_config
from .logs import configure_logging
from .settings import ROLES, Role, SettingsError, load_settings, missing

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bennettbot", description="A ChatOps bot that runs jobs for Slack."
    )
    parser.add_argument(
        "--role", choices=ROLES, default="all", help="what to run (default: all)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    helps = {
        "check": "validate the settings and the job configuration, then exit",
        "demo": "try the bot with no Slack and no tokens: in this terminal, "
        "or in a browser with --web",
        "healthcheck": "exit 0 when the role (--role) is healthy, else 1",
        "release": "the deploy's release step: remove BOT_CHECK_FILE",
    }
    for name, text in helps.items():
        command = commands.add_parser(name, help=text)
        # `--role` may also follow the command: `healthcheck --role bot`
        command.add_argument("--role", choices=ROLES, default=argparse.SUPPRESS)
        if name == "demo":
            command.add_argument(
                "--web", action="store_true", help="serve the demo as a web page"
            )
            command.add_argument(
                "--port", type=int, default=8765, help="the page's port (0: any)"
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    role = cast(Role, args.role)  # argparse checked it is one of ROLES
    if args.command == "check":
        return check(role)
    if args.command in ("healthcheck", "release"):
        return health(args.command, role)
    if args.command == "demo":
        from .demo import run_demo
        from .demo_web import run_web_demo

        configure_logging(logging.WARNING)  # the demo's screen is the prompt
        try:
            if args.web:
                return asyncio.run(run_web_demo(args.port))
            return asyncio.run(run_demo())
        except (SettingsError, JobConfigError) as exc:  # e.g. a bad .env
            return _problems(exc.problems)
    configure_logging()
    return run(role)


def _problems(problems: list[str]) -> int:
    for line in problems:
        print(line, file=sys.stderr)
    return EXIT_CONFIG


def check(role: Role) -> int:
    """Print what the settings and job configuration contain, or what is wrong."""
    try:
        settings = load_settings([role], require=False)
    except SettingsError as exc:
        return _problems(exc.problems)
    problems = missing(settings, [role])
    try:
        config = load_job_config(settings.JOB_CONFIG_PATH)
    except JobConfigError as exc:
        problems += exc.problems
        config = None
    database = _database_state(settings.DB_PATH)
    if database.startswith("DB_PATH:"):
        problems.append(database)
    if problems:
        return _problems(problems)
    assert config is not None
    print(f"settings: ok for role {role}")
    print(f"job config: {config.path}")
    base = ", ".join([*jobenv.BASE, "LC_*", *jobenv.ALWAYS])
    print(f"local jobs get: {base}, and what their namespace lists:")
    for namespace in config.namespaces.values():
        flags = " (restricted)" if namespace.restricted else ""
        where = f", remote {namespace.remote.host}" if namespace.remote else ""
        print(
            f"  {namespace.name}{flags}: {len(namespace.jobs)} jobs, "
            f"{len(namespace.slack)} commands{where}"
        )
        if namespace.env and not namespace.remote:
            print(f"    env: {', '.join(namespace.env)}")
        for schedule in namespace.schedules:
            channel = schedule.channel or namespace.default_channel
            upcoming = messages.local_time(
                schedule.next_after(datetime.now(UTC)), schedule.timezone
            )
            print(
                f"    schedule: {schedule.command!r} at {schedule.cron!r} "
                f"({schedule.timezone}) in {channel}, next {upcoming}"
            )
    print(f"database: {database}")
    return 0


def _database_state(path: Path) -> str:
    """What ``check`` says of the database, or its problem (``DB_PATH: …``)."""
    if not path.exists():
        return f"{path} (not there yet: the first role to start makes it)"
    return asyncio.run(_open_database(path))


async def _open_database(path: Path) -> str:
    from .store import Store, StoreError

    try:
        store = await Store.open(path)
    except StoreError as exc:
        return str(exc)
    try:
        return f"{path} (schema version {await store.schema_version()})"
    finally:
        await store.close()


def health(command: str, role: Role) -> int:
    from . import health

    try:
        settings = load_settings([role], require=False)
    except SettingsError as exc:
        return _problems(exc.problems)
    if command == "release":
        health.release(settings)
        return 0
    roles: list[str] = ["bot", "dispatcher", "web"] if role == "all" else [role]
    problems = health.run_check(settings, roles)
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"healthy: {', '.join(roles)}")
    return 1 if problems else 0


def run(role: Role) -> int:
    from .app import serve

    try:
        settings = load_settings([role])
        config = load_job_config(settings.JOB_CONFIG_PATH)
    except (SettingsError, JobConfigError) as exc:
        return _problems(exc.problems)
    from .models import StartupError

    try:
        return asyncio.run(serve(settings, role, config))
    except StartupError as exc:  # e.g. an unusable database, a missing channel
        return _problems([str(exc)])
