"""One retry policy, with one budget, for every Slack Web API call.

slack_sdk asks each of a client's retry handlers in turn after a failed
attempt, and the handlers share a single attempt counter: with one handler for
rate limits and another for server errors, two 429s use up the server-error
handler's budget before a 503 arrives. ``SlackRetry`` is the only handler the
bot installs. It retries any mix of

- rate limits (HTTP 429), after exactly the ``Retry-After`` seconds (1 when
  the header is missing);
- server errors (HTTP 5xx) and dropped or refused connections (aiohttp's
  ``ClientConnectionError`` family, not timeouts: a timed-out call may have
  been carried out), after an exponential backoff with a little jitter;

up to ``ATTEMPTS`` attempts in all. When a call has used all its attempts on
connection errors, Slack is taken to be unreachable for ``HOLD`` seconds (or
until any call gets an answer): connection errors are not retried meanwhile,
so an outage costs each post one attempt, not several seconds of retries.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import structlog
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = structlog.get_logger("slack")

ATTEMPTS = 5  # the first attempt and four retries
BACKOFF = 0.5  # seconds before retry n (from 0) of an error: BACKOFF * 2**n
JITTER = 0.1  # up to this fraction more, so failed clients do not retry in step
DEFAULT_RETRY_AFTER = 1.0  # seconds, for a 429 without a usable Retry-After
HOLD = 30.0  # seconds without retrying connection errors once Slack seemed gone


Count = Callable[[str, str], Awaitable[None]]  # (method, "error" | "retry")


async def counted(count: Count | None, method: str, kind: str) -> None:
    """Record a Slack API error or retry for the metrics; never raises."""
    if count is None:
        return
    try:
        await count(method, kind)
    except Exception as exc:  # a metric must not break a Slack call
        log.warning("slack_count_failed", method=method, error=str(exc))


class SlackRetry(AsyncRetryHandler):
    """Retry rate limits, server errors and connection errors, ``attempts``
    attempts in all. ``sleep``, ``rng`` (0 ≤ x < 1) and ``clock`` are there
    for tests."""

    def __init__(
        self,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        *,
        jitter: float = JITTER,
        hold: float = HOLD,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        count: Count | None = None,
    ) -> None:
        super().__init__(max_retry_count=attempts - 1)
        self._count = count
        self.backoff = backoff
        self.jitter = jitter
        self.hold = hold
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._unreachable_until = 0.0

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None:
            self._unreachable_until = 0.0  # Slack answered
        unreachable = error is not None and retryable(None, error)
        if unreachable and self._clock() < self._unreachable_until:
            return False
        if state.current_attempt >= self.max_retry_count:
            if unreachable:
                self._unreachable_until = self._clock() + self.hold
            return False
        return retryable(response, error)

    def delay(self, attempt: int, response: HttpResponse | None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 0)."""
        if response is not None and response.status_code == 429:
            return retry_after(response)
        return self.backoff * 2**attempt * (1 + self.jitter * self._rng())

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        seconds = self.delay(state.current_attempt, response)
        log.warning(
            "slack_retry",
            method=_method(request.url),
            attempt=state.current_attempt + 1,
            status=response.status_code if response is not None else None,
            error=type(error).__name__ if error is not None else None,
            wait=round(seconds, 3),
        )
        await counted(self._count, _method(request.url), "retry")
        await self._sleep(seconds)
        state.increment_current_attempt()


def retryable(response: HttpResponse | None, error: Exception | None) -> bool:
    """Whether a failed attempt is worth another: a connection error (not a
    timeout), or a response with status 429 or 5xx."""
    if error is not None:
        return isinstance(error, aiohttp.ClientConnectionError) and not isinstance(
            error, TimeoutError
        )
    if response is None:
        return False
    return response.status_code == 429 or 500 <= response.status_code <= 599


def _method(url: str) -> str:
    """The Web API method a URL calls (not an upload URL's one-off path)."""
    path = urlsplit(url).path
    return path.rsplit("/", 1)[-1] if "/api/" in path else "file upload"


def retry_after(response: HttpResponse) -> float:
    """The seconds a 429's ``Retry-After`` header asks for (default 1)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                seconds = float(values[0])
            except ValueError:
                break
            if math.isfinite(seconds):
                return max(0.0, seconds)
            break
    return DEFAULT_RETRY_AFTER
