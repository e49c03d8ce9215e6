"""The web server: every status path, with real GitHub payloads as fixtures."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bennettbot.jobqueue import JobQueue
from bennettbot.signing import make_token
from bennettbot.store import Store
from bennettbot.web import WebDeps, build_web_app, github_signature_ok
from conftest import job_config

GITHUB = Path(__file__).parent / "fixtures" / "github"
SECRET = "gh-webhook-secret"
CALLBACK_SECRET = "callback-secret"
PING = (GITHUB / "ping.payload.json").read_bytes()
CLOSED = json.loads((GITHUB / "pull_request.closed.payload.json").read_text())

CONFIG = job_config(
    """
[myproj]
default_channel = "#team"
[myproj.jobs.deploy]
run_args_template = "true"
[[myproj.slack]]
command = "deploy suppress from [start] to [end]"
action = "schedule_suppression"
job_type = "deploy"
[[myproj.slack]]
command = "deploy unsuppress"
action = "cancel_suppression"
job_type = "deploy"
"""
)


def merged_pr() -> bytes:
    payload = copy.deepcopy(CLOSED)  # as published: closed but not merged
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["merged_by"] = {"login": "octocat"}
    return json.dumps(payload).encode()


def signed(body: bytes, event: str, delivery: str = "d-1", secret: str = SECRET):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


class Web:
    def __init__(self, client: TestClient, posted: list, store: Store) -> None:
        self.client, self.posted, self.store = client, posted, store

    async def github(self, body: bytes, headers: dict, project: str = "myproj"):
        return await self.client.post(f"/github/{project}/", data=body, headers=headers)


def make_deps(store, clock) -> tuple[WebDeps, list[tuple[str, str, str]]]:
    """The web app's dependencies, with Slack posts recorded (a channel named
    ``C-REFUSED`` refuses them)."""
    posted: list[tuple[str, str, str]] = []

    async def post(channel: str, text: str, thread_ts: str) -> bool:
        if channel == "C-REFUSED":
            return False
        posted.append((channel, text, thread_ts))
        return True

    queue = JobQueue(store, CONFIG, clock)
    deps = WebDeps(CONFIG, queue, store, clock, post, SECRET, CALLBACK_SECRET, "bb")
    return deps, posted


async def make_web(store, clock):
    deps, posted = make_deps(store, clock)
    client = TestClient(TestServer(build_web_app(deps)))
    await client.start_server()
    return Web(client, posted, store)


@pytest.fixture
async def app(store, clock):
    web = await make_web(store, clock)
    yield web
    await web.client.close()


async def test_check(app):
    response = await app.client.get("/check/")
    assert (response.status, await response.text()) == (200, "ok")


async def test_a_signed_ping_is_ok(app):
    response = await app.github(PING, signed(PING, "ping"))
    assert response.status == 200
    assert await app.store.list_jobs() == []


async def test_a_merged_pr_schedules_a_deploy_in_a_minute_and_says_so(app, clock):
    body = merged_pr()
    response = await app.github(body, signed(body, "pull_request"))
    assert response.status == 200
    [job] = await app.store.list_jobs()
    assert job.type == "myproj_deploy" and job.requester.channel == "#team"
    assert (job.start_after - clock.now()).total_seconds() == 60
    [(channel, text, thread)] = app.posted
    assert channel == "#team" and thread == ""
    assert (
        "PR #2 “Update the README with new information.” was merged by octocat" in text
    )
    assert "2026-01-05 09:01:00 UTC" in text


async def test_a_merged_pr_while_suppressed_says_how_to_force(app, clock):
    now = clock.now()
    await app.store.schedule_suppression(
        "myproj_deploy", now, now.replace(hour=now.hour + 2)
    )
    body = merged_pr()
    assert (await app.github(body, signed(body, "pull_request"))).status == 200
    [(_, text, _)] = app.posted
    assert "suppressed until 2026-01-05 11:00:00 UTC" in text
    assert "`@bb myproj deploy unsuppress`" in text


async def test_a_closed_unmerged_pr_and_other_events_schedule_nothing(app):
    closed = json.dumps(CLOSED).encode()
    assert (await app.github(closed, signed(closed, "pull_request"))).status == 200
    body = merged_pr()
    assert (await app.github(body, signed(body, "issues", "d-2"))).status == 200
    assert await app.store.list_jobs() == [] and app.posted == []


async def test_the_same_delivery_twice_schedules_once_even_after_a_restart(
    app, store, clock, tmp_path
):
    body = merged_pr()
    assert (await app.github(body, signed(body, "pull_request", "same"))).status == 200
    await store.cancel_job("myproj_deploy")  # so a second schedule would show
    assert (await app.github(body, signed(body, "pull_request", "same"))).status == 200
    assert await store.list_jobs() == []
    restarted_store = await Store.open(tmp_path / "bot.db")
    restarted = await make_web(restarted_store, clock)
    response = await restarted.github(body, signed(body, "pull_request", "same"))
    assert response.status == 200 and await restarted_store.list_jobs() == []
    await restarted.client.close()
    await restarted_store.close()
    assert len(app.posted) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "not-a-signature"},
        {"X-Hub-Signature": "sha1=" + "0" * 40},
    ],
)
async def test_bad_or_missing_signatures_are_refused(app, headers):
    body = merged_pr()
    response = await app.github(body, {"X-GitHub-Event": "pull_request", **headers})
    assert response.status == 403
    assert await app.store.list_jobs() == []


async def test_a_sha1_signature_is_accepted_when_it_is_the_only_one(app):
    digest = hmac.new(SECRET.encode(), PING, hashlib.sha1).hexdigest()
    headers = {"X-Hub-Signature": f"sha1={digest}", "X-GitHub-Event": "ping"}
    assert (await app.github(PING, headers)).status == 200


async def test_unknown_project_and_malformed_json_are_400(app):
    response = await app.github(PING, signed(PING, "ping"), project="nosuch")
    assert response.status == 400
    body = b"{not json"
    response = await app.github(body, signed(body, "pull_request"))
    assert response.status == 400
    assert "Traceback" not in await response.text()


async def test_a_body_over_1_mib_is_413(app):
    body = b"x" * ((1 << 20) + 1)
    assert (await app.github(body, signed(body, "ping"))).status == 413


def merged_with(**changes) -> bytes:
    payload = json.loads(merged_pr())
    payload["pull_request"] |= changes
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "body",
    [
        merged_with(merged_by="octocat"),
        merged_with(number="2"),
        merged_with(number=True),
        merged_with(title=["a"]),
        merged_with(merged="yes"),
        merged_with(id=None),
        merged_with(merged_by={"login": 7}),
        json.dumps({"action": "closed", "pull_request": "x"}).encode(),
        json.dumps(["not", "an", "object"]).encode(),
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"\xff\xfe",
    ],
)
async def test_malformed_shapes_are_400_and_schedule_nothing(app, body):
    response = await app.github(body, signed(body, "pull_request"))
    assert response.status == 400
    assert "Traceback" not in await response.text()
    assert await app.store.list_jobs() == [] and app.posted == []


async def test_a_replayed_merge_under_new_or_no_delivery_ids_deploys_once(app):
    body = merged_pr()
    assert (await app.github(body, signed(body, "pull_request", "d-1"))).status == 200
    await app.store.cancel_job("myproj_deploy")  # so a second schedule would show
    for delivery in ["d-2", ""]:
        headers = signed(body, "pull_request", delivery)
        if not delivery:
            del headers["X-GitHub-Delivery"]
        response = await app.github(body, headers)
        assert (response.status, await response.text()) == (200, "already handled")
    assert await app.store.list_jobs() == [] and len(app.posted) == 1
    another = merged_with(id=999, number=3)
    assert (
        await app.github(another, signed(another, "pull_request", "d-3"))
    ).status == 200
    assert len(await app.store.list_jobs()) == 1


async def test_pr_titles_and_names_cannot_ping(app):
    body = merged_with(
        title="<!channel> fix <@U0ALICE>", merged_by={"login": "<!here>"}
    )
    assert (await app.github(body, signed(body, "pull_request"))).status == 200
    [(_, text, _)] = app.posted
    assert "<!channel>" not in text and "<@U0ALICE>" not in text
    assert "<!here>" not in text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    change=st.sampled_from(["body", "signature", "secret"]),
    position=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_any_change_to_body_signature_or_secret_is_refused(change, position, byte):
    body = merged_pr()
    headers = signed(body, "pull_request")
    if change == "body":
        index = position % len(body)
        if body[index] == byte:
            return
        body = body[:index] + bytes([byte]) + body[index + 1 :]
    elif change == "signature":
        signature = headers["X-Hub-Signature-256"]
        index = len("sha256=") + position % 64
        digit = "0123456789abcdef"[byte % 16]
        if signature[index] == digit:
            return
        headers["X-Hub-Signature-256"] = (
            signature[:index] + digit + signature[index + 1 :]
        )
    else:
        headers = signed(body, "pull_request", secret=SECRET + chr(33 + byte % 90))
    assert not github_signature_ok(SECRET, body, headers)


def callback_token(
    clock, channel="C1", thread_ts="1.2", secret=CALLBACK_SECRET, ttl=60
):
    return make_token(secret, int(clock.now().timestamp()) + ttl, channel, thread_ts)


async def test_a_signed_callback_posts_in_the_thread(app, clock):
    response = await app.client.post(
        "/callback/",
        params={"channel": "C1", "thread_ts": "1.2", "token": callback_token(clock)},
        json={"message": "halfway there"},
    )
    assert (response.status, await response.text()) == (200, "posted")
    assert app.posted == [("C1", "halfway there", "1.2")]


async def test_a_callback_cannot_ping_the_channel(app, clock):
    response = await app.client.post(
        "/callback/",
        params={"channel": "C1", "thread_ts": "1.2", "token": callback_token(clock)},
        json={"message": "<!channel> done, <@U0ALICE> <https://x.org|see>"},
    )
    assert response.status == 200
    [(_, text, _)] = app.posted
    assert "<!channel>" not in text and "<@U0ALICE>" not in text
    assert "<https://x.org|see>" in text


@pytest.mark.parametrize(
    ("made_for", "sent_to"),
    [
        (("C1", "1.2"), ("C2", "1.2")),  # another channel, e.g. #logs
        (("C1", "1.2"), ("C1", "9.9")),  # another thread
        (("C1", "1.2"), ("C1", "")),  # the channel itself, not the thread
    ],
)
async def test_a_token_posts_to_its_own_thread_only(app, clock, made_for, sent_to):
    token = callback_token(clock, *made_for)
    channel, thread_ts = sent_to
    response = await app.client.post(
        "/callback/",
        params={"channel": channel, "thread_ts": thread_ts, "token": token},
        json={"message": "<!channel> hi"},
    )
    assert response.status == 403 and app.posted == []


@pytest.mark.parametrize(
    ("ttl", "secret"), [(-1, CALLBACK_SECRET), (60, "wrong"), (3600, "")]
)
async def test_bad_or_expired_callback_tokens_are_403(app, clock, ttl, secret):
    token = callback_token(clock, secret=secret, ttl=ttl)
    response = await app.client.post(
        "/callback/",
        params={"channel": "C1", "thread_ts": "1.2", "token": token},
        json={"message": "x"},
    )
    assert response.status == 403 and app.posted == []


@pytest.mark.parametrize(
    ("params", "body", "status"),
    [
        ({"channel": "C1"}, b"{not json", 400),
        ({"channel": "C1"}, b'{"text": "x"}', 400),
        ({"channel": "C1"}, b'{"message": 12}', 400),
        ({"channel": "C1"}, b'{"message": ["x"]}', 400),
        ({"channel": "C1"}, b'{"message": null}', 400),
        ({"channel": "C1"}, b'["message"]', 400),
        ({"channel": "C1"}, b"[" * 100_000 + b"]" * 100_000, 413),
        ({"channel": "C1"}, b"[" * 30_000 + b"]" * 30_000, 400),
        ({"channel": "C1"}, b'{"message": "' + b"x" * 40_001 + b'"}', 400),
        ({"channel": "C1"}, b'{"message": "\xff"}', 400),
        ({}, b'{"message": "x"}', 400),
        ({"channel": "C1"}, b'{"message": "' + b"x" * (64 << 10) + b'"}', 413),
    ],
)
async def test_bad_callbacks(app, clock, params, body, status):
    token = callback_token(clock, params.get("channel", ""), "")
    response = await app.client.post(
        "/callback/", params={**params, "token": token}, data=body
    )
    assert response.status == status and app.posted == []
    assert "Traceback" not in await response.text()


async def test_a_message_of_40000_characters_is_posted(app, clock):
    response = await app.client.post(
        "/callback/",
        params={"channel": "C1", "thread_ts": "1.2", "token": callback_token(clock)},
        json={"message": "x" * 40_000},
    )
    assert response.status == 200 and len(app.posted[0][1]) == 40_000


async def test_a_callback_slack_refuses_is_502(app, clock):
    response = await app.client.post(
        "/callback/",
        params={
            "channel": "C-REFUSED",
            "thread_ts": "1.2",
            "token": callback_token(clock, "C-REFUSED"),
        },
        json={"message": "x"},
    )
    assert response.status == 502


async def test_the_access_log_has_no_secrets(app, clock):
    from structlog.testing import capture_logs

    token = callback_token(clock, "C1", "")
    with capture_logs() as logs:
        await app.client.post(
            "/callback/",
            params={"channel": "C1", "token": token},
            json={"message": "m"},
        )
        await app.client.get("/nowhere")
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert [(e["path"], e["status"]) for e in lines] == [
        ("/callback/", 200),
        ("/nowhere", 404),
    ]
    assert token not in repr(logs) and CALLBACK_SECRET not in repr(logs)


# Any JSON at all, and the real merged-PR payload with one part replaced by it.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def pr_payloads(draw) -> object:
    payload = json.loads(merged_pr())
    where = draw(st.sampled_from(["whole", "top", "pull", "merged_by", "none"]))
    value = draw(JSON_VALUES)
    if where == "whole":
        return value
    if where == "top":
        payload[draw(st.sampled_from(["action", "pull_request"]))] = value
    elif where == "pull":
        field = draw(st.sampled_from(["merged", "number", "title", "merged_by", "id"]))
        payload["pull_request"][field] = value
    elif where == "merged_by":
        payload["pull_request"]["merged_by"]["login"] = value
    return payload


def is_merged_pr(payload: object) -> bool:
    """An independent statement of the shape that may schedule a deploy."""
    if not isinstance(payload, dict) or payload.get("action") != "closed":
        return False
    pull = payload.get("pull_request")
    if not isinstance(pull, dict) or pull.get("merged") is not True:
        return False
    by = pull.get("merged_by")
    return (
        all(type(pull.get(k)) is int for k in ("id", "number"))
        and isinstance(pull.get("title"), str)
        and (by is None or (isinstance(by, dict) and isinstance(by.get("login"), str)))
    )


async def _answer(tmp: Path, path: str, body: bytes, headers: dict) -> tuple:
    from bennettbot.models import FakeClock

    store = await Store.open(tmp / "bot.db")
    web = await make_web(store, FakeClock())
    try:
        response = await web.client.post(path, data=body, headers=headers)
        return response.status, await store.list_jobs(), web.posted
    finally:
        await web.client.close()
        await store.close()


@settings(max_examples=80, deadline=None)
@given(payload=pr_payloads())
def test_any_pr_shape_is_answered_200_or_400_and_only_right_ones_schedule(
    payload, tmp_path_factory
):
    import asyncio

    body = json.dumps(payload).encode()
    tmp = tmp_path_factory.mktemp("shape")
    status, jobs, _ = asyncio.run(
        _answer(tmp, "/github/myproj/", body, signed(body, "pull_request"))
    )
    assert status in (200, 400)
    assert bool(jobs) is is_merged_pr(payload)
    if isinstance(payload, dict) and payload.get("action") == "closed":
        pull = payload.get("pull_request")
        if not (isinstance(pull, dict) and pull.get("merged") is False):
            assert (status == 200) is is_merged_pr(payload)


@settings(max_examples=80, deadline=None)
@given(payload=JSON_VALUES | st.fixed_dictionaries({"message": JSON_VALUES}))
def test_any_callback_shape_is_answered_200_or_400(payload, tmp_path_factory):
    import asyncio

    from bennettbot.models import FakeClock

    token = callback_token(FakeClock(), "C1", "1.2")
    tmp = tmp_path_factory.mktemp("shape")
    path = f"/callback/?channel=C1&thread_ts=1.2&token={token}"
    body = json.dumps(payload).encode()
    status, _, posted = asyncio.run(_answer(tmp, path, body, {}))
    message = payload.get("message") if isinstance(payload, dict) else None
    right = isinstance(message, str) and bool(message.strip())
    assert (status, bool(posted)) == ((200, True) if right else (400, False))


async def test_a_delivery_whose_deploy_could_not_be_queued_can_come_again(
    app, store, monkeypatch
):
    import sqlite3

    real = store.schedule_job

    async def locked(*args, **kwargs):
        monkeypatch.setattr(store, "schedule_job", real)  # once only
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "schedule_job", locked)
    body = merged_pr()
    first = await app.github(body, signed(body, "pull_request", "d-9"))
    assert first.status == 500 and await store.list_jobs() == []
    again = await app.github(body, signed(body, "pull_request", "d-9"))  # redelivered
    assert (again.status, await again.text()) == (200, "deploy scheduled")
    assert len(await store.list_jobs()) == 1
