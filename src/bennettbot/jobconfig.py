"""The job configuration: TOML → validated, frozen models, with compiled commands.

Each top-level table is a namespace. A job's type is ``NAMESPACE_JOB``; a
namespace has no ``_`` so the type splits unambiguously at the first ``_``.
Every problem found at load names the file, the namespace and the key.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from .models import Remote, ReportFormat
from .runners.quoting import template_params

Action = Literal[
    "schedule_job", "cancel_job", "schedule_suppression", "cancel_suppression"
]
_NAMESPACE_RE = re.compile(r"[a-z0-9-]+")
# A fabfile comes over HTTPS; plain HTTP only from this machine (tests).
FABFILE_URL = r"^(https://|http://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?/)"
_PARAM_RE = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")


class JobConfigError(Exception):
    """The job configuration is invalid; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobDef(_Frozen):
    run_args_template: Annotated[str, Field(min_length=1)]
    report_stdout: bool = False
    report_format: ReportFormat = "text"
    report_success: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 3600
    progress: bool = True  # a progress message in the thread for long runs
    confirm: bool = False  # ask for a button press before queuing (from Slack)

    @field_validator("run_args_template")
    @classmethod
    def _fields_are_named(cls, template: str) -> str:
        try:
            fields = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc})") from None
        for _, name, spec, conversion in fields:
            # {name!r} or {name:.3} would reshape the quoted argument: refuse
            plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or "")
            if name is not None and (not plain or spec or conversion):
                raise ValueError(
                    f"{{{name}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} is not a plain named field "
                    "like {name} (use doubled braces for literal ones)"
                )
        if quoted := _quoted_fields(template):
            raise ValueError(
                f"{{{quoted[0]}}} is inside quotes: the bot quotes every argument "
                "itself, and quoting it again would undo that; write it bare"
            )
        return template

    @property
    def params(self) -> frozenset[str]:
        return template_params(self.run_args_template)


class SlackCommand(_Frozen):
    command: Annotated[str, Field(min_length=1)]
    help: str = ""
    action: Action
    job_type: Annotated[str, Field(min_length=1)]
    delay_seconds: Annotated[float, Field(ge=0)] = 0
    _pattern: re.Pattern[str] = PrivateAttr()

    @field_validator("command")
    @classmethod
    def _params_are_distinct_and_separated(cls, command: str) -> str:
        params = _PARAM_RE.findall(command)
        if len(set(params)) != len(params):
            raise ValueError("command repeats a [param]")
        if "][" in command:
            raise ValueError("two [params] need literal text between them")
        return command

    def model_post_init(self, context: object, /) -> None:
        self._pattern = _compile(self.command)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAM_RE.findall(self.command))

    @property
    def shape(self) -> str:
        """The command with its params blanked: two commands of one shape clash."""
        return _PARAM_RE.sub("[]", " ".join(self.command.lower().split()))

    def match(self, text: str) -> dict[str, str] | None:
        found = self._pattern.fullmatch(text)
        return None if found is None else found.groupdict()


class RemoteDef(_Frozen):
    host: Annotated[str, Field(min_length=1)]
    user: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    cwd: str = "."

    def to_remote(self) -> Remote:
        return Remote(host=self.host, user=self.user, port=self.port, cwd=self.cwd)


class ScheduleDef(_Frozen):
    """``[[NAMESPACE.schedules]]``: a command of the namespace, queued at each
    time of a five-field ``cron`` in ``timezone``, reporting in ``channel``."""

    command: Annotated[str, Field(min_length=1)]
    cron: str
    timezone: str = "UTC"
    channel: str = ""  # "": the namespace's default_channel

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str) -> str:
        if len(cron.split()) != 5:
            raise ValueError("cron needs five fields: minute hour day month weekday")
        try:
            CronSim(cron, datetime(2026, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise ValueError(f"invalid cron expression ({exc})") from None
        return " ".join(cron.split())

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name)") from None
        return name

    def next_after(self, moment: datetime) -> datetime:
        """The first time after ``moment`` (UTC), in UTC."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        return next(CronSim(self.cron, local)).astimezone(UTC)


class Namespace(_Frozen):
    name: str = ""
    description: str = ""
    restricted: bool = False
    default_channel: str = ""
    fabfile: Annotated[str, Field(pattern=FABFILE_URL)] | None = None
    # variables these jobs get from the bot's settings or environment
    env: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], ...] = ()
    jobs: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], JobDef] = Field(
        default_factory=dict
    )
    slack: tuple[SlackCommand, ...] = ()
    schedules: tuple[ScheduleDef, ...] = ()
    remote: RemoteDef | None = None
    _matching_order: tuple[SlackCommand, ...] = PrivateAttr()

    def model_post_init(self, context: object, /) -> None:
        # The most specific command wins: "deploy suppress from [a] to [b]"
        # before "deploy [env]", whatever their order in the file.
        self._matching_order = tuple(
            sorted(self.slack, key=lambda c: -len(_PARAM_RE.sub("", c.command)))
        )

    def match(self, text: str) -> tuple[SlackCommand, dict[str, str]] | None:
        for command in self._matching_order:
            if (args := command.match(text)) is not None:
                return command, args
        return None


@dataclass(frozen=True, slots=True)
class Job:
    """A job definition resolved from its type."""

    type: str
    namespace: Namespace
    name: str
    definition: JobDef


@dataclass(frozen=True, slots=True)
class CommandMatch:
    namespace: Namespace
    command: SlackCommand
    args: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class JobConfig:
    path: Path
    namespaces: Mapping[str, Namespace]

    def job(self, job_type: str) -> Job | None:
        namespace_name, _, name = job_type.partition("_")
        namespace = self.namespaces.get(namespace_name)
        if namespace is None or name not in namespace.jobs:
            return None
        return Job(job_type, namespace, name, namespace.jobs[name])

    def schedules(self) -> list[tuple[Namespace, ScheduleDef]]:
        """Every namespace's schedules, in file order."""
        return [(ns, sc) for ns in self.namespaces.values() for sc in ns.schedules]

    def restricted_namespaces(self) -> frozenset[str]:
        """The names of the restricted namespaces."""
        return frozenset(n.name for n in self.namespaces.values() if n.restricted)

    def match(self, text: str) -> CommandMatch | None:
        """Match ``NAMESPACE COMMAND…`` (whitespace already folded) to a command."""
        namespace_name, _, rest = text.partition(" ")
        namespace = self.namespaces.get(namespace_name.lower())
        if namespace is None or (found := namespace.match(rest)) is None:
            return None
        return CommandMatch(namespace, *found)


def _compile(command: str) -> re.Pattern[str]:
    parts = []
    for index, piece in enumerate(_PARAM_RE.split(" ".join(command.split()))):
        # split() alternates literal text and param names
        parts.append(f"(?P<{piece}>.+?)" if index % 2 else re.escape(piece))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def load_job_config(path: Path) -> JobConfig:
    """Read and validate the job configuration; raise ``JobConfigError``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JobConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise JobConfigError([f"{path}: invalid TOML: {exc}"]) from None
    return parse_job_config(raw, path)


def parse_job_config(raw: Mapping[str, object], path: Path) -> JobConfig:
    problems: list[str] = []
    namespaces: dict[str, Namespace] = {}
    for name, table in raw.items():
        where = f"{path}: [{name}]"
        if not _NAMESPACE_RE.fullmatch(name):
            problems.append(
                f"{where}: namespace name must be lowercase letters, digits and "
                "'-' (no '_')"
            )
            continue
        if not isinstance(table, dict):
            problems.append(f"{where}: must be a table")
            continue
        if "name" in table:
            problems.append(f"{where}: name: unknown key")
            continue
        try:
            namespace = Namespace.model_validate({**table, "name": name})
        except ValidationError as exc:
            problems.extend(_describe(where, table, exc))
            continue
        problems.extend(f"{where}: {p}" for p in _check_namespace(namespace))
        namespaces[name] = namespace
    if problems:
        raise JobConfigError(problems)
    return JobConfig(path=path, namespaces=namespaces)


def _describe(where: str, table: dict, exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        if (
            loc
            and loc[0] in ("slack", "schedules")
            and len(loc) > 1
            and isinstance(loc[1], int)
        ):
            # name a command by its text rather than its position
            command = table[loc[0]][loc[1]]
            text = command.get("command") if isinstance(command, dict) else None
            loc[1] = f"[{loc[1]}]" + (f" ({text!r})" if text else "")
        message = error["msg"]
        if loc and loc[-1] == "[key]":  # a job's name, not its value
            loc.pop()
            message = "a job name may only have letters, digits, '_' and '-'"
        key = ".".join(str(p) for p in loc).replace(".[", "[")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "literal_error":
            message = f"invalid value {error['input']!r}: {message.lower()}"
        lines.append(f"{where}: {key}: {message}")
    return lines


def _quoted_fields(template: str) -> list[str]:
    """The ``{fields}`` of a shell template that sit inside quotes."""
    found, quote = [], ""
    for literal, name, _, _ in string.Formatter().parse(template):
        escaped = False
        for char in literal:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "'":
                escaped = True
            elif quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
        if name is not None and quote:
            found.append(name)
    return found


def _check_namespace(namespace: Namespace) -> list[str]:
    problems = []
    if "deploy" in namespace.jobs and not namespace.default_channel:
        problems.append(
            "default_channel: a namespace with a deploy job needs one (merged "
            "pull requests schedule the deploy, which reports there)"
        )
    seen: dict[str, str] = {}
    for index, command in enumerate(namespace.slack):
        key = f"slack[{index}] ({command.command!r})"
        if command.shape in seen:
            problems.append(f"{key}: command is the same as {seen[command.shape]!r}")
        seen.setdefault(command.shape, command.command)
        params = command.params
        job = namespace.jobs.get(command.job_type)
        if job is None:
            problems.append(
                f"{key}.job_type: job {command.job_type!r} does not exist in "
                f"[{namespace.name}.jobs]"
            )
            continue
        if command.action == "schedule_job" and set(params) != job.params:
            problems.append(
                f"{key}: command params {_show(params)} differ from the "
                f"template params {_show(job.params)} of job {command.job_type!r}"
            )
        elif command.action == "schedule_suppression" and len(params) != 2:
            problems.append(
                f"{key}: a schedule_suppression command needs exactly two params "
                f"(start, then end), found {_show(params)}"
            )
        elif command.action.startswith("cancel_") and params:
            problems.append(f"{key}: a {command.action} command takes no params")
    return problems + _check_schedules(namespace)


def _check_schedules(namespace: Namespace) -> list[str]:
    problems = []
    for index, schedule in enumerate(namespace.schedules):
        key = f"schedules[{index}] ({schedule.command!r})"
        found = namespace.match(" ".join(schedule.command.split()))
        if found is None:
            problems.append(
                f"{key}.command: not a command of [{namespace.name}] (give it as "
                "typed after the namespace name)"
            )
        elif found[0].params:
            problems.append(
                f"{key}.command: a scheduled command takes no params (it matched "
                f"{found[0].command!r})"
            )
        if not (schedule.channel or namespace.default_channel):
            problems.append(
                f"{key}.channel: needed, since [{namespace.name}] has no "
                "default_channel"
            )
    return problems


def _show(params: Iterable[str]) -> str:
    names = sorted(params) if isinstance(params, (set, frozenset)) else list(params)
    return "[" + ", ".join(names) + "]" if names else "none"
