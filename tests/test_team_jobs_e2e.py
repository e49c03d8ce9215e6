"""End to end: the shipped team jobs (`report board`, `techsupport rota
report`) asked in Slack, run by the dispatcher as real subprocesses, with only
the internet (GitHub, Google) mocked by aioresponses inside the job process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bennettbot.settings import SHIPPED_JOB_CONFIG
from e2e_rig import running_bot
from jobkit.rota import duty_week
from service_accounts import service_account_key
from slack_blocks import check_blocks

REPLAY = Path(__file__).parent / "http_replay"
GRAPHQL = "https://api.github.com/graphql"
TOKEN = "ghp_e2eTeamJobsToken0000000000000000000"
SHEET_ID = "1kA2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz-_e2e"
PLACEHOLDER = "REPLACE-WITH-THE-TECH-SUPPORT-ROTA-SHEET-ID"
SHEET_VALUES = rf"^https://sheets\.googleapis\.com/v4/spreadsheets/{SHEET_ID}/values/"


def board_page(nodes: list[dict], cursor: str, more: bool) -> dict:
    project = {
        "title": "Team RAP board",
        "url": "https://github.com/orgs/opensafely-core/projects/1",
        "field": {"options": [{"name": "Todo"}, {"name": "In Progress"}]},
        "items": {
            "pageInfo": {"hasNextPage": more, "endCursor": cursor},
            "nodes": nodes,
        },
    }
    return {"data": {"organization": {"projectV2": project}}}


def issue(number: int, title: str, status: str, *logins: str) -> dict:
    return {
        "isArchived": False,
        "status": {"name": status},
        "content": {
            "title": title,
            "url": f"https://github.com/opensafely-core/job-server/issues/{number}",
            "assignees": {"nodes": [{"login": login} for login in logins]},
        },
    }


@pytest.fixture
def internet(tmp_path, monkeypatch):
    """Answers for the job processes' HTTP requests; the requests are recorded."""
    answers: list[dict] = []
    replay, record = tmp_path / "replay.json", tmp_path / "requests.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(REPLAY))
    monkeypatch.setenv("BENNETTBOT_HTTP_REPLAY", str(replay))
    monkeypatch.setenv("BENNETTBOT_HTTP_RECORD", str(record))

    class Internet:
        def answer(self, method: str, status: int = 200, **entry: object) -> None:
            answers.append({"method": method, "status": status, **entry})
            replay.write_text(json.dumps(answers))

        def requests(self) -> list[dict]:
            lines = record.read_text().splitlines() if record.exists() else []
            return [json.loads(line) for line in lines]

    Internet().answer("GET", url="https://example.invalid/unused")
    return Internet()


@pytest.fixture
async def bot(slack, tmp_path, clean_env, internet):
    key = tmp_path / "service-account.json"
    info, _ = service_account_key("rota-reader@bennettbot-e2e.iam.gserviceaccount.com")
    key.write_text(json.dumps(info))
    # the shipped job config with this team's sheet id, as an operator sets
    # it, and the mocked internet's settings passed to the jobs
    config = tmp_path / "jobs.toml"
    shipped = SHIPPED_JOB_CONFIG.read_text(encoding="utf-8")
    assert shipped.count("\nenv = [") >= 3
    shipped = shipped.replace(
        "\nenv = [", '\nenv = ["BENNETTBOT_HTTP_REPLAY", "BENNETTBOT_HTTP_RECORD", '
    )
    config.write_text(shipped.replace(PLACEHOLDER, SHEET_ID), encoding="utf-8")
    async with running_bot(
        slack,
        tmp_path,
        JOB_CONFIG_PATH=config,
        DATA_TEAM_GITHUB_API_TOKEN=TOKEN,
        GCP_CREDENTIALS_PATH=key,
    ) as running:
        yield running


async def test_report_board_posts_the_board_as_blocks_in_the_thread(bot, internet):
    internet.answer(
        "POST",
        url=GRAPHQL,
        payload=board_page(
            [issue(7, "Fix <login> & logout", "In Progress", "alice", "bob")],
            "Y3Vyc29yOjE=",
            True,
        ),
    )
    internet.answer(
        "POST",
        url=GRAPHQL,
        payload=board_page([issue(9, "Write docs", "Todo")], "Y3Vyc29yOjI=", False),
    )
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> report board 1")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts, timeout=30)

    blocks = check_blocks(reply.blocks)
    assert blocks[0]["text"]["text"] == "Team RAP board"
    assert "projects/1|Open the board>" in blocks[1]["elements"][0]["text"]
    assert [b["text"]["text"] for b in blocks[2:]] == [
        "*Todo* (1)\n• <https://github.com/opensafely-core/job-server/issues/9"
        "|Write docs>",
        "*In Progress* (1)\n• <https://github.com/opensafely-core/job-server/"
        "issues/7|Fix &lt;login&gt; &amp; logout> (alice, bob)",
    ]
    first, second = internet.requests()
    assert first["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert first["json"]["variables"] == {
        "org": "opensafely-core",
        "number": 1,
        "field": "Status",
    }
    assert second["json"]["variables"]["after"] == "Y3Vyc29yOjE="
    assert "white_check_mark" in slack.reactions("C0GENERAL", asked.ts)


async def test_a_board_that_does_not_exist_fails_with_the_reason(bot, internet):
    internet.answer(
        "POST",
        url=GRAPHQL,
        payload={
            "data": {"organization": {"projectV2": None}},
            "errors": [
                {
                    "type": "NOT_FOUND",
                    "path": ["organization", "projectV2"],
                    "locations": [{"line": 4, "column": 5}],
                    "message": "Could not resolve to a ProjectV2 with the number 99.",
                }
            ],
        },
    )
    slack = bot.slack
    asked = await slack.post("alice", "general", "<@U0BOT> report board 99")
    reply = await slack.wait_for_reply(
        "C0GENERAL", asked.ts, contains="failed", timeout=30
    )
    assert "> error: the opensafely-core organisation has no project 99" in reply.text
    assert TOKEN not in reply.text
    await slack.wait_for(
        lambda: [m for m in slack.messages("C0TECHSUP") if "report_board" in m.text]
    )


async def test_words_from_slack_cannot_become_options_of_the_job(bot, internet):
    internet.answer("POST", url=GRAPHQL, payload=board_page([], "", False))
    slack = bot.slack
    asked = await slack.post(
        "alice", "general", "<@U0BOT> report board 1 --org=another-org"
    )
    reply = await slack.wait_for_reply(
        "C0GENERAL", asked.ts, contains="failed", timeout=30
    )
    assert "> error: the board has no status '--org=another-org'" in reply.text
    [request] = internet.requests()
    assert request["json"]["variables"]["org"] == "opensafely-core"


async def test_the_tech_support_rota_mentions_out_of_office(bot, internet):
    today = datetime.now(UTC).date()
    monday = duty_week(today)  # at a weekend, the coming week
    internet.answer(
        "POST",
        url="https://oauth2.googleapis.com/token",
        payload={"access_token": "ya29.e2e", "token_type": "Bearer"},
    )
    internet.answer(
        "GET",
        url_pattern=SHEET_VALUES,
        payload={
            "range": "'Tech support rota'!A1:C3",
            "majorDimension": "ROWS",
            "values": [
                ["Week", "Primary", "Secondary"],
                [monday.isoformat(), "Alice", "Bob"],
                [(monday + timedelta(days=7)).isoformat(), "Carol"],
            ],
        },
    )
    slack = bot.slack
    until = today + timedelta(days=3)
    await slack.post(
        "alice", "general", f"<@U0BOT> techsupport ooo on from {today} to {until}"
    )
    asked = await slack.post("bob", "general", "<@U0BOT> techsupport rota report")
    reply = await slack.wait_for_reply("C0GENERAL", asked.ts, timeout=30)

    texts = [b["text"]["text"] for b in check_blocks(reply.blocks)[1:4]]
    assert texts[0].endswith("Primary: Alice\nSecondary: Bob")
    assert texts[1].endswith("Primary: Carol\nSecondary: nobody")
    assert f"out of office until {until:%a} {until.day} {until:%b %Y}" in texts[2]
    _token, values = internet.requests()
    assert values["headers"]["Authorization"] == "Bearer ya29.e2e"
