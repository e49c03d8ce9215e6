"""Runners: run a job's command locally or over SSH, behind one protocol.

Both implement :class:`bennettbot.models.Runner`. Arguments are quoted into
commands with :func:`render_command` before a runner sees them. ``SSHRunner``
is imported on first use: asyncssh costs about 15 MB, and a bot with no
remote namespace never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bennettbot.runners.local import LocalRunner
from bennettbot.runners.quoting import BadArgument, render_command, template_params

if TYPE_CHECKING:
    from bennettbot.runners.ssh import SSHRunner

__all__ = [
    "BadArgument",
    "LocalRunner",
    "SSHRunner",
    "render_command",
    "template_params",
]


def __getattr__(name: str) -> object:
    if name == "SSHRunner":
        from bennettbot.runners.ssh import SSHRunner

        return SSHRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
