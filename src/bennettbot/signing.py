"""Signed callback tokens, bound to one thread: ``EXPIRES:HMAC``.

EXPIRES is integer Unix seconds; HMAC is the hex HMAC-SHA256 of the ASCII
string ``EXPIRES:CHANNEL:THREAD_TS``, so a token posts to its own thread only
and only until it expires. Jobs get a callback URL carrying such a token; the
web server verifies it in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

# A run's token outlives the run by this much (slow callbacks, clock skew).
TOKEN_GRACE_SECONDS = 3600
_MAX_EXPIRES_DIGITS = 12  # well past year 30,000; keeps int() cheap


def _digest(secret: str, expires: str, channel: str, thread_ts: str) -> str:
    message = f"{expires}:{channel}:{thread_ts}".encode("ascii", "replace")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def make_token(secret: str, expires: int, channel: str, thread_ts: str) -> str:
    """A token for ``channel``/``thread_ts`` that is good until ``expires``."""
    return f"{expires}:{_digest(secret, str(expires), channel, thread_ts)}"


def verify_token(
    secret: str, token: str, channel: str, thread_ts: str, now: float
) -> bool:
    """True when ``token`` was made with ``secret`` for this very thread and
    has not expired at ``now``."""
    expires, _, signature = token.partition(":")
    if not (
        expires.isascii()
        and expires.isdigit()
        and len(expires) <= _MAX_EXPIRES_DIGITS
        and signature.isascii()
    ):
        return False
    expected = _digest(secret, expires, channel, thread_ts)
    if not hmac.compare_digest(expected, signature):
        return False
    return now <= int(expires)


def callback_url(
    origin: str,
    secret: str,
    channel: str,
    thread_ts: str,
    *,
    started: float,
    timeout_seconds: float,
) -> str:
    """The URL a job posts ``{"message": …}`` to, to reply in its thread.

    Its token expires an hour after the run's own timeout would end it.
    """
    expires = int(started + timeout_seconds + TOKEN_GRACE_SECONDS)
    token = make_token(secret, expires, channel, thread_ts)
    query = urlencode({"channel": channel, "thread_ts": thread_ts, "token": token})
    return f"{origin.rstrip('/')}/callback/?{query}"
