"""Callback tokens: TIMESTAMP:HMAC, checked in constant time, one hour of life."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from bennettbot.signing import callback_url, make_token, verify_token

NOW = 1_780_000_000


def test_token_is_timestamp_and_hex_hmac_sha256():
    token = make_token("s3cret", NOW + 0.9)
    timestamp, digest = token.split(":")
    assert timestamp == str(NOW)
    expected = hmac.new(b"s3cret", str(NOW).encode(), hashlib.sha256).hexdigest()
    assert digest == expected


def test_valid_for_one_hour():
    token = make_token("s3cret", NOW)
    assert verify_token("s3cret", token, NOW)
    assert verify_token("s3cret", token, NOW + 3600)
    assert not verify_token("s3cret", token, NOW + 3601)
    assert not verify_token("s3cret", token, NOW - 1)  # from the future


def test_malformed_tokens_are_refused():
    for token in ["", ":", "abc:def", f"{NOW}", f"{NOW}:", f"-1:{'0' * 64}", "١:x"]:
        assert not verify_token("s3cret", token, NOW)


@given(st.text(min_size=1), st.text(min_size=1))
def test_another_secret_never_verifies(secret, other):
    if secret != other:
        assert not verify_token(other, make_token(secret, NOW), NOW)


@given(st.integers(min_value=0, max_value=63), st.sampled_from("0123456789abcdef"))
def test_any_changed_digit_is_refused(position, digit):
    token = make_token("s3cret", NOW)
    timestamp, digest = token.split(":")
    changed = digest[:position] + digit + digest[position + 1 :]
    assert verify_token("s3cret", f"{timestamp}:{changed}", NOW) is (changed == digest)


def test_callback_url_carries_channel_thread_and_token():
    url = callback_url("https://bot.example.org/", "s3cret", "C1", "1.2", NOW)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "bot.example.org",
        "/callback/",
    )
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["channel"] == "C1" and query["thread_ts"] == "1.2"
    assert verify_token("s3cret", query["token"], NOW)
    assert "s3cret" not in url
