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

from bennettbot.scheduler import Scheduler
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


async def make_web(store, clock):
    posted: list[tuple[str, str, str]] = []

    async def post(channel: str, text: str, thread_ts: str) -> None:
        posted.append((channel, text, thread_ts))

    scheduler = Scheduler(store, CONFIG, clock, bot_name="bennettbot")
    deps = WebDeps(CONFIG, scheduler, store, clock, post, SECRET, CALLBACK_SECRET, "bb")
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


async def test_a_signed_callback_posts_in_the_thread(app, clock):
    token = make_token(CALLBACK_SECRET, clock.now().timestamp())
    response = await app.client.post(
        "/callback/",
        params={"channel": "C1", "thread_ts": "1.2", "token": token},
        json={"message": "halfway there"},
    )
    assert response.status == 200
    assert app.posted == [("C1", "halfway there", "1.2")]


@pytest.mark.parametrize(
    ("token_age", "secret", "status"),
    [(3601, CALLBACK_SECRET, 403), (0, "wrong", 403), (-10, CALLBACK_SECRET, 403)],
)
async def test_bad_or_expired_callback_tokens_are_403(
    app, clock, token_age, secret, status
):
    token = make_token(secret, clock.now().timestamp() - token_age)
    response = await app.client.post(
        "/callback/", params={"channel": "C1", "token": token}, json={"message": "x"}
    )
    assert response.status == status and app.posted == []


@pytest.mark.parametrize(
    ("params", "body", "status"),
    [
        ({"channel": "C1"}, b"{not json", 400),
        ({"channel": "C1"}, b'{"text": "x"}', 400),
        ({}, b'{"message": "x"}', 400),
        ({"channel": "C1"}, b'{"message": "' + b"x" * (64 << 10) + b'"}', 413),
    ],
)
async def test_bad_callbacks(app, clock, params, body, status):
    token = make_token(CALLBACK_SECRET, clock.now().timestamp())
    response = await app.client.post(
        "/callback/", params={**params, "token": token}, data=body
    )
    assert response.status == status and app.posted == []


async def test_the_access_log_has_no_secrets(app, clock):
    from structlog.testing import capture_logs

    token = make_token(CALLBACK_SECRET, clock.now().timestamp())
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
