"""One retry budget for Slack calls: the handler's decisions, then the real
slack_sdk client retrying against the emulator (and a closed port)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import aiohttp
import pytest
import structlog
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bennettbot.emulator import UPLOAD
from bennettbot.models import QueuedJob, Requester
from bennettbot.notifier import Report
from bennettbot.slack.notifier import SlackNotifier, add_retries
from bennettbot.slack.retry import SlackRetry, retry_after, retryable

JOB = QueuedJob(
    1,
    "test_echo",
    {},
    Requester("U0ALICE", "C0GENERAL"),
    datetime(2026, 1, 5, tzinfo=UTC),
)
REQUEST = HttpRequest(
    method="POST", url="http://slack.test/api/chat.postMessage", headers={}
)


def response(status: int, **headers: str) -> HttpResponse:
    return HttpResponse(status_code=status, headers=headers, body={"ok": False})


class Sleeps:
    """Stands in for ``asyncio.sleep``: records what it was asked to wait."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def run_attempts(
    handler: SlackRetry, failures: list[HttpResponse | Exception]
) -> list[bool]:
    """Ask ``handler`` about each failure in turn, as slack_sdk does (one
    state for the whole call); whether it retried each."""
    state, answers = RetryState(), []
    for failure in failures:
        kind = "error" if isinstance(failure, Exception) else "response"
        given = {kind: failure}
        retry = await handler.can_retry_async(state=state, request=REQUEST, **given)
        answers.append(retry)
        if not retry:
            break
        await handler.prepare_for_next_attempt_async(
            state=state, request=REQUEST, **given
        )
        assert state.next_attempt_requested
    return answers


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_rate_limits_and_server_errors_are_retried(status):
    assert retryable(response(status), None)


@pytest.mark.parametrize("status", [200, 400, 403, 404, 600])
def test_other_statuses_are_not_retried(status):
    assert not retryable(response(status), None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), True),
        (aiohttp.ServerConnectionError(), True),
        (aiohttp.ClientConnectionError(), True),
        (aiohttp.ServerTimeoutError(), False),  # it may have been carried out
        (TimeoutError(), False),
        (aiohttp.ClientPayloadError(), False),
        (ValueError("bug"), False),
    ],
)
def test_which_errors_are_retried(error, expected):
    assert retryable(None, error) is expected


def test_retry_after_is_read_exactly_with_a_default_of_one_second():
    assert retry_after(response(429, **{"Retry-After": "7"})) == 7
    assert retry_after(response(429, **{"retry-after": "0"})) == 0
    assert retry_after(response(429, **{"Retry-After": "2.5"})) == 2.5
    assert retry_after(response(429)) == 1
    assert retry_after(response(429, **{"Retry-After": "soon"})) == 1
    assert retry_after(response(429, **{"Retry-After": "inf"})) == 1
    assert retry_after(response(429, **{"Retry-After": "-3"})) == 0


async def test_server_and_connection_errors_back_off_exponentially():
    sleeps = Sleeps()
    handler = SlackRetry(sleep=sleeps, rng=lambda: 0.0)
    failures: list[HttpResponse | Exception] = [
        response(503),
        aiohttp.ServerDisconnectedError(),
        response(500),
        response(502),
    ]
    assert await run_attempts(handler, failures) == [True] * 4
    assert sleeps.seconds == [0.5, 1.0, 2.0, 4.0]


async def test_jitter_adds_a_little_and_the_base_is_injectable():
    sleeps = Sleeps()
    handler = SlackRetry(backoff=0.01, sleep=sleeps, rng=lambda: 1.0)
    await run_attempts(handler, [response(503), response(503)])
    assert sleeps.seconds == pytest.approx([0.011, 0.022])
    real = SlackRetry()  # the real random source stays within 10% more
    for attempt in range(4):
        assert 0.5 * 2**attempt <= real.delay(attempt, None) <= 0.55 * 2**attempt


async def test_a_rate_limit_waits_exactly_retry_after():
    sleeps = Sleeps()
    handler = SlackRetry(sleep=sleeps, rng=lambda: 1.0)
    limited = [response(429, **{"Retry-After": "3"}), response(429)]
    assert await run_attempts(handler, limited) == [True, True]
    assert sleeps.seconds == [3, 1]


async def test_any_mix_shares_one_budget_of_five_attempts():
    sleeps = Sleeps()
    handler = SlackRetry(sleep=sleeps, rng=lambda: 0.0)
    failures: list[HttpResponse | Exception] = [
        response(429, **{"Retry-After": "1"}),
        response(429, **{"Retry-After": "1"}),
        response(503),
        aiohttp.ClientOSError(104, "reset"),
        response(503),  # the fifth failure: no more
    ]
    assert await run_attempts(handler, failures) == [True, True, True, True, False]
    assert sleeps.seconds == [1, 1, 2.0, 4.0]


async def test_other_failures_are_not_retried():
    handler = SlackRetry(sleep=Sleeps())
    assert await run_attempts(handler, [response(400)]) == [False]
    assert await run_attempts(handler, [aiohttp.ServerTimeoutError()]) == [False]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_once_slack_seems_gone_connection_errors_fail_fast_for_a_while():
    clock, sleeps = Clock(), Sleeps()
    handler = SlackRetry(hold=30, sleep=sleeps, clock=clock)
    refused = aiohttp.ClientOSError(111, "Connection refused")
    assert await run_attempts(handler, [refused] * 5) == [True] * 4 + [False]
    assert len(sleeps.seconds) == 4
    # other calls now get one attempt, however they fail to connect
    assert await run_attempts(handler, [aiohttp.ServerDisconnectedError()]) == [False]
    # but answers are still retried, and an answer means Slack is back
    assert await run_attempts(handler, [response(503), refused]) == [True, True]
    clock.now += 1
    assert await run_attempts(handler, [refused] * 5) == [True] * 4 + [False]
    clock.now += 30  # the hold is over
    assert await run_attempts(handler, [refused, response(429)]) == [True, True]


async def test_calls_that_fail_otherwise_do_not_start_a_hold():
    handler = SlackRetry(sleep=Sleeps(), clock=Clock())
    assert await run_attempts(handler, [response(503)] * 5) == [True] * 4 + [False]
    refused = aiohttp.ClientOSError(111, "Connection refused")
    assert await run_attempts(handler, [refused] * 2) == [True, True]


def test_add_retries_installs_the_one_handler_only():
    client = AsyncWebClient(token="xoxb-test")
    assert client.retry_handlers  # slack_sdk's default connection handler
    assert add_retries(client) is client
    [handler] = client.retry_handlers
    assert isinstance(handler, SlackRetry)
    assert handler.max_retry_count == 4


def unreachable(sleeps: Sleeps) -> AsyncWebClient:
    """A client of a Slack that refuses connections (a port nobody listens
    on), retrying with ``SlackRetry`` and no real waits."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/")
    client.retry_handlers = [SlackRetry(sleep=sleeps, rng=lambda: 0.0)]
    return client


async def test_a_refused_connection_is_tried_five_times_in_all():
    sleeps = Sleeps()
    client = unreachable(sleeps)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.chat_postMessage(channel="C1", text="hello")
    assert sleeps.seconds == [0.5, 1.0, 2.0, 4.0]


async def test_after_one_call_gave_up_the_next_one_fails_at_once():
    sleeps = Sleeps()
    client = unreachable(sleeps)
    for _ in range(2):
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.chat_postMessage(channel="C1", text="hello")
    assert len(sleeps.seconds) == 4  # all of them the first call's


async def test_a_report_to_an_unreachable_slack_is_logged_without_a_fallback():
    sleeps = Sleeps()
    client = unreachable(sleeps)
    notifier = SlackNotifier(client, "#logs", "")
    with structlog.testing.capture_logs() as logs:
        await notifier.report(JOB, Report("text", "unheard"))
    assert len(sleeps.seconds) == 4  # one call's retries: no fallback post after
    [failed] = [e for e in logs if e["event"] == "report_failed"]
    assert failed["error"] == "ClientConnectorError"


# Through the emulator, with real waits (a short backoff base keeps them short)

BACKOFF = 0.05


@pytest.fixture
def notifier(slack) -> SlackNotifier:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    return SlackNotifier(add_retries(client, backoff=BACKOFF), "#logs", "")


async def test_two_rate_limits_then_a_server_error_still_post(slack, notifier):
    slack.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    slack.fail_next("chat.postMessage", status=503)
    async with asyncio.timeout(20):
        assert await notifier.post("#general", "hello after all") is True
    calls = slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 503, 200]
    assert calls[1].at - calls[0].at >= 1.0  # Retry-After honoured
    assert calls[2].at - calls[1].at >= 1.0
    assert calls[3].at - calls[2].at >= BACKOFF * 2**2
    assert [m.text for m in slack.messages("C0GENERAL")] == ["hello after all"]


async def test_five_failures_in_a_row_give_up(slack, notifier):
    slack.fail_next("chat.postMessage", status=429, retry_after=0, times=2)
    slack.fail_next("chat.postMessage", status=503, times=3)
    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(10):
            assert await notifier.post("#general", "lost") is False
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 429, 503, 503, 503]
    assert slack.messages("C0GENERAL") == []
    [failed] = [e for e in logs if e["event"] == "post_failed"]
    assert failed["error"] == "internal_error" and failed["channel"] == "#general"
    retries = [e for e in logs if e["event"] == "slack_retry"]
    assert [e["method"] for e in retries] == ["chat.postMessage"] * 4
    assert [e["status"] for e in retries] == [429, 429, 503, 503]


async def test_a_failed_file_upload_is_retried_too(slack, notifier):
    slack.fail_next(UPLOAD, status=503)
    slack.fail_next("files.completeUploadExternal", status=429, retry_after=0)
    with structlog.testing.capture_logs() as logs:
        assert await notifier.post("C0GENERAL", "f" * 40_001) is True
    [message] = slack.messages("C0GENERAL")
    assert slack.file_content(message.files[0]) == b"f" * 40_001
    retries = [e["method"] for e in logs if e["event"] == "slack_retry"]
    assert retries == ["file upload", "files.completeUploadExternal"]


async def test_a_report_that_gives_up_becomes_the_short_notice(slack, notifier):
    slack.fail_next("chat.postMessage", status=503, times=5)
    async with asyncio.timeout(10):
        await notifier.report(JOB, Report("text", "the lost result"))
    [notice] = slack.messages("C0GENERAL")
    assert notice.text == (
        "Command `test_echo` finished, but I could not post its result "
        "(internal_error)."
    )
    assert len(slack.calls_to("chat.postMessage")) == 6
