"""GET /metrics end to end: all three roles against the Slack emulator, the
real aiohttp server, real runs; the text parsed with prometheus_client's own
parser."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bennettbot.emulator.harness import emulator_settings, free_port, running_roles
from bennettbot.settings import load_settings

JOBS = Path(__file__).parent / "fixtures" / "operating_jobs.toml"
TOKEN = "metrics-token-5c1e"


def settings_for(slack, tmp_path: Path, port: int, **extra: object):
    return load_settings(
        **emulator_settings(slack, tmp_path),
        JOB_CONFIG_PATH=JOBS,
        WORKSPACE_DIR=tmp_path / "workspace",
        WEB_HOST="127.0.0.1",
        WEB_PORT=port,
        WEBHOOK_ORIGIN=f"http://127.0.0.1:{port}",
        GITHUB_WEBHOOK_SECRET="github-secret-5c1e",
        EBMBOT_WEBHOOK_SECRET="callback-secret-5c1e",
        SLACK_SIGNING_SECRET="signing-secret-5c1e",
        **extra,
    )


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def run_commands(slack, *commands: str) -> None:
    for command in commands:
        asked = await slack.post("alice", "general", f"<@U0BOT> {command}")
        await slack.wait_for_reply("C0GENERAL", asked.ts, timeout=10)


async def test_metrics_count_runs_jobs_slack_trouble_and_answers(
    slack, tmp_path, clean_env
):
    port = free_port()
    settings = settings_for(slack, tmp_path, port, METRICS_TOKEN=TOKEN)
    roles = ("bot", "dispatcher", "web")
    async with running_roles(settings, roles) as engine:
        await run_commands(slack, "ops ok", "ops ok")
        # the failure's repost to tech-support cannot get its permalink
        slack.fail_next("chat.getPermalink", status=200, error="message_not_found")
        await run_commands(slack, "ops bad", "ops slow")
        slack.fail_next("chat.postMessage", status=503)  # retried, then posted
        await run_commands(slack, "ops ok")
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/github/ops/", data=b"{}") as response:
                assert response.status == 403  # unsigned
            async with http.post(f"{base}/callback/", data=b"{}") as response:
                assert response.status == 400  # no token
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 401
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(f"{base}/metrics", headers=headers) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
        runs = await engine.store.runs()
    found = samples(text)

    def runs_of(job_type: str, outcome: str) -> float:
        labels = (("job_type", job_type), ("namespace", "ops"), ("outcome", outcome))
        return found[("bennettbot_job_runs_total", labels)]

    assert runs_of("ops_ok", "succeeded") == 3
    assert runs_of("ops_bad", "failed") == 1
    assert runs_of("ops_slow", "timed_out") == 1
    assert len(runs) == 5
    assert found[("bennettbot_jobs", (("state", "running"),))] == 0
    assert found[("bennettbot_jobs", (("state", "waiting"),))] == 0
    ok = (("job_type", "ops_ok"), ("namespace", "ops"))
    assert found[("bennettbot_job_run_duration_seconds_count", ok)] == 3
    assert found[("bennettbot_job_start_lag_seconds_count", ok)] == 3
    every = tuple(sorted((*ok, ("le", "+Inf"))))
    assert found[("bennettbot_job_run_duration_seconds_bucket", every)] == 3
    retried = ("bennettbot_slack_api_retries_total", (("method", "chat.postMessage"),))
    assert found[retried] == 1
    beats = [
        dict(labels)["role"]
        for name, labels in found
        if name == "bennettbot_heartbeat_age_seconds"
    ]
    assert [role.split(":")[0].split("@")[0] for role in beats] == ["dispatcher"]
    answers = "bennettbot_http_answers_total"
    assert found[(answers, (("endpoint", "github"), ("status", "403")))] == 1
    assert found[(answers, (("endpoint", "callback"), ("status", "400")))] == 1
    assert TOKEN not in text


@pytest.mark.parametrize("token", [None, ""])
async def test_without_a_token_there_are_no_metrics(slack, tmp_path, clean_env, token):
    port = free_port()
    extra = {} if token is None else {"METRICS_TOKEN": token}
    settings = settings_for(slack, tmp_path, port, **extra)
    async with running_roles(settings, ("web",)), aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer "}
        url = f"http://127.0.0.1:{port}/metrics"
        async with http.get(url, headers=headers) as response:
            assert response.status == 404
