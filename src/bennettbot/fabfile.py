"""Fetching a namespace's ``fabfile`` before its jobs run.

A failed download is not fatal: the job runs with the last copy, and the
caller tells the logs channel the reason this module returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO

import aiohttp

from .jobconfig import FABFILE_URL

MAX_FABFILE_BYTES = 5 << 20
_ALLOWED = re.compile(FABFILE_URL)
CHUNK = 64 << 10


async def fetch_fabfile(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    timeout: float = 30.0,
    limit: int = MAX_FABFILE_BYTES,
) -> str | None:
    """Download ``url`` to ``dest``; return ``None``, or why it failed.

    The body is streamed to a temporary file beside ``dest`` (never held in
    memory) and refused past ``limit`` bytes. ``dest`` is replaced
    atomically, and only after a complete ``200`` response, so a failure
    leaves the previous copy as it was. Network and file errors come back as
    a short reason, never as an exception.
    """
    try:
        tmp = await asyncio.to_thread(_temporary, dest)
    except OSError as exc:
        return f"cannot save {url} to {dest}: {exc.strerror or exc}"
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status != 200:
                return f"HTTP {response.status} fetching {url}"
            if not _ALLOWED.match(str(response.url)):  # redirected off HTTPS
                return f"{url} redirected to {response.url}, which is not HTTPS"
            size = 0
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    return f"{url} is larger than {limit:,} bytes; not used"
                await asyncio.to_thread(tmp.write, chunk)
        await asyncio.to_thread(_install, tmp, dest)
    except TimeoutError:
        return f"timed out after {timeout:.15g} s fetching {url}"
    except aiohttp.ClientError as exc:
        return f"{_describe(exc)} fetching {url}"
    except OSError as exc:
        return f"cannot save {url} to {dest}: {exc.strerror or exc}"
    finally:
        await asyncio.to_thread(_discard, tmp)
    return None


def _temporary(dest: Path) -> IO[bytes]:
    """A new, private file beside ``dest``; its ``name`` is its path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.NamedTemporaryFile(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp", delete=False
    )


def _install(tmp: IO[bytes], dest: Path) -> None:
    tmp.close()
    os.chmod(tmp.name, 0o644)  # mkstemp makes it private; a fabfile is not
    os.replace(tmp.name, dest)


def _discard(tmp: IO[bytes]) -> None:
    """Close ``tmp`` and remove it, unless it became the fabfile."""
    tmp.close()
    with contextlib.suppress(OSError):
        os.unlink(tmp.name)


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc})"
    return str(exc) or type(exc).__name__
