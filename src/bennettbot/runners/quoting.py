"""Turning Slack arguments into a shell command that cannot be hijacked.

Every argument goes through :func:`shlex.quote` before it is put into a job's
``run_args_template``, so whatever a user types reaches the job as one literal
word, locally or over SSH. Text that no shell word can carry (a NUL character,
or a lone surrogate that has no UTF-8 form) is refused with
:class:`BadArgument`.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping


class BadArgument(ValueError):
    """An argument cannot be passed safely to a shell command."""


def template_params(template: str) -> frozenset[str]:
    """Return the names of the ``{fields}`` in ``template``.

    ``"python jobs.py --name={name}"`` gives ``frozenset({"name"})``. Format
    specs and conversions are ignored; ``{{`` and ``}}`` are literal braces.
    """
    return frozenset(
        field
        for _literal, field, _spec, _conversion in string.Formatter().parse(template)
        if field is not None
    )


def render_command(template: str, args: Mapping[str, str]) -> str:
    """Put each of ``args``, shell-quoted, into ``template``.

    Raises :class:`BadArgument` (naming the parameter, not echoing its value)
    when an argument contains a NUL character or cannot be encoded as UTF-8,
    or when the template names a parameter that ``args`` lacks.
    """
    quoted: dict[str, str] = {}
    for name, value in args.items():
        _check(name, value)
        quoted[name] = shlex.quote(value)
    missing = sorted(template_params(template) - quoted.keys())
    if missing:
        raise BadArgument(f"no value given for parameter {missing[0]!r}")
    return template.format_map(quoted)


def _check(name: str, value: str) -> None:
    if "\x00" in value:
        raise BadArgument(f"argument {name!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadArgument(
            f"argument {name!r} is not valid text: it has an unencodable"
            f" character at position {exc.start}"
        ) from None
