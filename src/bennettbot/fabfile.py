"""Fetching a namespace's ``fabfile`` before its jobs run.

A failed download is not fatal: the job runs with the last copy, and the
caller tells the logs channel the reason this module returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

import aiohttp


async def fetch_fabfile(
    session: aiohttp.ClientSession, url: str, dest: Path, *, timeout: float = 30.0
) -> str | None:
    """Download ``url`` to ``dest``; return ``None``, or why it failed.

    ``dest`` is replaced atomically and only after a complete ``200``
    response, so a failure leaves the previous copy as it was. Network and
    file errors come back as a short reason, never as an exception.
    """
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status != 200:
                return f"HTTP {response.status} fetching {url}"
            body = await response.read()
    except TimeoutError:
        return f"timed out after {timeout:.15g} s fetching {url}"
    except aiohttp.ClientError as exc:
        return f"{_describe(exc)} fetching {url}"
    try:
        await asyncio.to_thread(_write_atomically, dest, body)
    except OSError as exc:
        return f"cannot save {url} to {dest}: {exc.strerror or exc}"
    return None


def _write_atomically(dest: Path, body: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(body)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a fabfile is not
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc})"
    return str(exc) or type(exc).__name__
