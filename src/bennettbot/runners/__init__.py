"""Runners: run a job's command locally or over SSH, behind one protocol.

Both implement :class:`bennettbot.models.Runner`. Arguments are quoted into
commands with :func:`render_command` before a runner sees them.
"""

from bennettbot.runners.local import LocalRunner
from bennettbot.runners.quoting import BadArgument, render_command, template_params
from bennettbot.runners.ssh import SSHRunner

__all__ = [
    "BadArgument",
    "LocalRunner",
    "SSHRunner",
    "render_command",
    "template_params",
]
