"""Running a job script: one line on stderr and exit status 1 when it fails."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable

import aiohttp

USER_AGENT = "bennettbot-jobs"
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)


class JobError(Exception):
    """A failure the job explains to its user in one line."""


def http_session() -> aiohttp.ClientSession:
    """The one HTTP session a job script uses."""
    return aiohttp.ClientSession(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})


async def read_json(
    response: aiohttp.ClientResponse, service: str, *, required: bool = True
) -> object:
    """The response's JSON body, or a ``JobError`` naming ``service`` (None
    when the body is not JSON and not ``required``)."""
    try:
        return await response.json(content_type=None)
    except ValueError:
        if not required:
            return None
        raise JobError(
            f"{service} answered with HTTP {response.status} and a body that is "
            "not JSON; try again later"
        ) from None


async def _await(main: Callable[[], Awaitable[str]]) -> str:
    return await main()


def run(main: Callable[[], Awaitable[str]]) -> int:
    """Run ``main`` and print what it returns; failures become one line on stderr."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    try:
        output: str = asyncio.run(_await(main))
    except JobError as error:
        return _fail(str(error))
    except TimeoutError:
        return _fail("a web request timed out; try again later")
    except aiohttp.ClientError as error:
        detail = str(error) or type(error).__name__
        return _fail(f"a web request failed ({detail[:200]}); try again later")
    print(output)
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
