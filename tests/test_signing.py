"""Callback tokens: EXPIRES:HMAC over EXPIRES:CHANNEL:THREAD_TS, constant time."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from bennettbot.signing import callback_url, make_token, verify_token

NOW = 1_780_000_000


def test_token_is_expiry_and_hex_hmac_sha256_of_expiry_channel_and_thread():
    token = make_token("s3cret", NOW, "C1", "1.2")
    expires, digest = token.split(":")
    assert expires == str(NOW)
    message = f"{NOW}:C1:1.2".encode()
    assert digest == hmac.new(b"s3cret", message, hashlib.sha256).hexdigest()


def test_valid_until_it_expires():
    token = make_token("s3cret", NOW, "C1", "1.2")
    assert verify_token("s3cret", token, "C1", "1.2", NOW - 7200)
    assert verify_token("s3cret", token, "C1", "1.2", NOW)
    assert not verify_token("s3cret", token, "C1", "1.2", NOW + 1)


def test_good_for_its_own_thread_only():
    token = make_token("s3cret", NOW, "C1", "1.2")
    assert not verify_token("s3cret", token, "C2", "1.2", NOW)
    assert not verify_token("s3cret", token, "C1", "1.3", NOW)
    assert not verify_token("s3cret", token, "C1", "", NOW)
    another = make_token("s3cret", NOW, "C2", "1.2")
    assert not verify_token("s3cret", another, "C1", "1.2", NOW)


def test_malformed_tokens_are_refused():
    for token in [
        "",
        ":",
        "abc:def",
        f"{NOW}",
        f"{NOW}:",
        f"-1:{'0' * 64}",
        "١:x",
        "9" * 5000 + ":" + "0" * 64,  # no int() of a huge number
        f"{NOW}:é",
    ]:
        assert not verify_token("s3cret", token, "C1", "1.2", NOW)


@given(st.text(min_size=1), st.text(min_size=1))
def test_another_secret_never_verifies(secret, other):
    if secret != other:
        token = make_token(secret, NOW, "C1", "1.2")
        assert not verify_token(other, token, "C1", "1.2", NOW)


@given(st.integers(min_value=0, max_value=63), st.sampled_from("0123456789abcdef"))
def test_any_changed_digit_is_refused(position, digit):
    token = make_token("s3cret", NOW, "C1", "1.2")
    expires, digest = token.split(":")
    changed = digest[:position] + digit + digest[position + 1 :]
    verified = verify_token("s3cret", f"{expires}:{changed}", "C1", "1.2", NOW)
    assert verified is (changed == digest)


def test_a_later_expiry_with_the_old_signature_is_refused():
    token = make_token("s3cret", NOW, "C1", "1.2")
    _, digest = token.split(":")
    assert not verify_token("s3cret", f"{NOW + 9999}:{digest}", "C1", "1.2", NOW)


def test_callback_url_carries_channel_thread_and_a_token_for_the_run():
    url = callback_url(
        "https://bot.example.org/",
        "s3cret",
        "C1",
        "1.2",
        started=NOW,
        timeout_seconds=600,
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "bot.example.org",
        "/callback/",
    )
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["channel"] == "C1" and query["thread_ts"] == "1.2"
    assert query["token"].startswith(f"{NOW + 600 + 3600}:")
    assert verify_token("s3cret", query["token"], "C1", "1.2", NOW + 4200)
    assert not verify_token("s3cret", query["token"], "C1", "1.2", NOW + 4201)
    assert "s3cret" not in url
