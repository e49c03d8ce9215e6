"""Slack message text → a typed command. Pure functions: no I/O, no Slack dicts.

The text after the bot's mention (anywhere in the message) is the command; in
a direct message the whole text is, or the text after the mention if there is
one. Whitespace folds, one trailing ``.`` goes, Slack's escapes and link
markup are undone. A message that contains the word ``tech-support`` is a
support request, never a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .jobconfig import CommandMatch, JobConfig

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_SUPPORT = re.compile(r"(?<![\w/-])tech-support(?![\w-])", re.IGNORECASE)
_REMOVE = re.compile(r"remove job id (\d+)", re.IGNORECASE)
_STOP = re.compile(r"stop job id (\d+)", re.IGNORECASE)
_SHOWLOGS = re.compile(
    r"showlogs (head|tail|all) (stdout|stderr|output|error|out|err) (\S+)",
    re.IGNORECASE,
)
_OOO_ON = re.compile(
    r"techsupport ooo on from (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Status:
    pass


@dataclass(frozen=True, slots=True)
class RemoveJob:
    job_id: int


@dataclass(frozen=True, slots=True)
class StopJob:
    job_id: int


@dataclass(frozen=True, slots=True)
class History:
    """``history``, ``history NAMESPACE`` or ``history TYPE``."""

    of: str | None = None  # as typed (lower case); None: every run


@dataclass(frozen=True, slots=True)
class ShowLogs:
    """``showlogs head|tail|all STREAM RUN``: RUN is a run id or a log folder."""

    part: str  # head | tail | all
    stream: str  # as typed: stdout, stderr, output, error…
    run: str


@dataclass(frozen=True, slots=True)
class ShowLogsUsage:
    """``showlogs`` with words that do not fit: answered with its usage."""


@dataclass(frozen=True, slots=True)
class Help:
    namespace: str | None = None  # None: the general help
    known: bool = True  # False: `help NAME` with a NAME that is no namespace


@dataclass(frozen=True, slots=True)
class OutOfOfficeOn:
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class OutOfOfficeOff:
    pass


@dataclass(frozen=True, slots=True)
class OutOfOfficeStatus:
    pass


@dataclass(frozen=True, slots=True)
class BadDates:
    """``techsupport ooo on`` with dates that are not real ``YYYY-MM-DD`` dates."""


@dataclass(frozen=True, slots=True)
class Run:
    match: CommandMatch


@dataclass(frozen=True, slots=True)
class Unknown:
    text: str


Command = (
    Status
    | RemoveJob
    | StopJob
    | History
    | ShowLogs
    | ShowLogsUsage
    | Help
    | OutOfOfficeOn
    | OutOfOfficeOff
    | OutOfOfficeStatus
    | BadDates
    | Run
    | Unknown
)


def is_support_request(text: str) -> bool:
    """Whether ``text`` has the word ``tech-support`` (not in a URL path)."""
    return _SUPPORT.search(text) is not None


def addressed_text(text: str, bot_user_id: str, *, is_im: bool) -> str | None:
    """The part of a message meant as a command, or None when the bot is not
    addressed (a channel message without its mention)."""
    mention = re.search(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", text)
    if mention is not None:
        return text[mention.end() :]
    return text if is_im else None


def clean(text: str) -> str:
    """Undo Slack's link markup and ``&lt;`` ``&gt;`` ``&amp;`` escapes, fold
    whitespace to single spaces and drop one trailing ``.``."""
    text = _LINK.sub(r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = " ".join(text.split())
    return text.removesuffix(".").rstrip()


def parse(text: str, config: JobConfig) -> Command:
    """Turn cleaned command text into a command."""
    words = text.lower().split()
    if words == ["status"]:
        return Status()
    if found := _REMOVE.fullmatch(text):
        return RemoveJob(int(found[1]))
    if found := _STOP.fullmatch(text):
        return StopJob(int(found[1]))
    if words[:1] == ["history"] and len(words) <= 2:
        return History(words[1] if len(words) == 2 else None)
    if words[:1] == ["showlogs"]:  # built in, whatever the job config holds
        if found := _SHOWLOGS.fullmatch(text):
            return ShowLogs(found[1].lower(), found[2].lower(), found[3])
        return ShowLogsUsage()
    if words and "help" in (words[0], words[-1]) and len(words) <= 2:
        if len(words) == 1:
            return Help()
        namespace = words[1] if words[0] == "help" else words[0]
        if namespace in config.namespaces:
            return Help(namespace)
        return Help(None, known=False)
    if ooo := _parse_ooo(text, words):
        return ooo
    if (match := config.match(text)) is not None:
        return Run(match)
    return Unknown(text)


def _parse_ooo(text: str, words: list[str]) -> Command | None:
    if words[:2] != ["techsupport", "ooo"]:
        return None
    if words[2:] == ["off"]:
        return OutOfOfficeOff()
    if words[2:] == ["status"]:
        return OutOfOfficeStatus()
    if found := _OOO_ON.fullmatch(text):
        try:
            return OutOfOfficeOn(
                date.fromisoformat(found[1]), date.fromisoformat(found[2])
            )
        except ValueError:
            return BadDates()
    if words[2:3] == ["on"]:
        return BadDates()
    return None
