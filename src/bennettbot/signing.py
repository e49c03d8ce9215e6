"""Signed callback tokens: ``TIMESTAMP:HMAC`` (hex HMAC-SHA256 of the timestamp).

Jobs get a callback URL carrying such a token; the web server verifies it in
constant time and refuses tokens older than ``max_age`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

TOKEN_LIFETIME_SECONDS = 3600


def _digest(secret: str, timestamp: str) -> str:
    return hmac.new(
        secret.encode(), timestamp.encode("ascii"), hashlib.sha256
    ).hexdigest()


def make_token(secret: str, now: float) -> str:
    timestamp = str(int(now))
    return f"{timestamp}:{_digest(secret, timestamp)}"


def verify_token(
    secret: str, token: str, now: float, max_age: float = TOKEN_LIFETIME_SECONDS
) -> bool:
    """True when ``token`` was made with ``secret`` at most ``max_age`` s ago."""
    timestamp, _, signature = token.partition(":")
    if not (timestamp.isascii() and timestamp.isdigit() and signature):
        return False
    expected = _digest(secret, timestamp)
    if not hmac.compare_digest(expected, signature.encode("ascii", "replace").decode()):
        return False
    return 0 <= now - int(timestamp) <= max_age


def callback_url(
    origin: str, secret: str, channel: str, thread_ts: str, now: float
) -> str:
    """The URL a job posts ``{"message": …}`` to, to reply in its thread."""
    query = urlencode(
        {"channel": channel, "thread_ts": thread_ts, "token": make_token(secret, now)}
    )
    return f"{origin.rstrip('/')}/callback/?{query}"
