"""What a local job's environment holds: least privilege.

A job does not inherit the bot's environment. It gets a fixed base set (what
programs need to run: ``PATH``, ``HOME``, the locale…), its callback URL, and
only the variables its namespace lists in ``env``. The bot's own secrets
(Slack tokens, webhook secrets) reach a job only when its namespace lists
them by name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

BASE = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "PYTHONPATH")
LOCALE_PREFIX = "LC_"
ALWAYS = ("EBMBOT_CALLBACK_URL",)  # set per run by the dispatcher


def base_names(available: Mapping[str, str]) -> list[str]:
    """The base set's names, as far as ``available`` has them."""
    locale = sorted(k for k in available if k.startswith(LOCALE_PREFIX))
    return [k for k in BASE if k in available] + locale


def job_environment(
    available: Mapping[str, str], listed: Iterable[str], workspace: Path
) -> dict[str, str]:
    """The environment of a namespace's local jobs.

    ``available``: what the bot may pass on (its environment, overlaid with
    its settings, so that ``.env`` values and absolute paths win); ``listed``:
    the namespace's ``env``. ``python`` in a job is the bot's interpreter,
    and job scripts can import the shipped helpers from ``workspace``.
    """
    env = {name: available[name] for name in base_names(available)}
    env |= {name: available[name] for name in listed if name in available}
    env["PATH"] = _prepend(str(Path(sys.executable).parent), env.get("PATH"))
    env["PYTHONPATH"] = _prepend(str(workspace), env.get("PYTHONPATH"))
    return env


def _prepend(folder: str, inherited: str | None) -> str:
    return f"{folder}{os.pathsep}{inherited}" if inherited else folder
