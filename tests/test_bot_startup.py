"""The bot's start: the channels its settings name must exist and have it in
them; Slack being away at start is waited out."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bennettbot.emulator.harness import service_environment
from bennettbot.slack.directory import ChannelError, ensure_member
from e2e_rig import running_bot
from processes import DISPATCHER_ENV, start


@pytest.fixture
def client(slack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_a_public_channel_the_bot_is_not_in_is_joined(slack, client):
    assert "U0BOT" not in slack.workspace.channels["C0TECH"].members
    assert await ensure_member(client, "SLACK_LOGS_CHANNEL", "#tech", "bb") == "C0TECH"
    assert "U0BOT" in slack.workspace.channels["C0TECH"].members


@pytest.mark.parametrize("ref", ["#team", "team", "C0TEAM", "tech-support"])
async def test_channels_the_bot_is_in_are_fine_by_name_or_id(client, ref):
    assert await ensure_member(client, "SLACK_LOGS_CHANNEL", ref, "bb")


async def test_a_missing_channel_names_the_variable(client):
    with pytest.raises(ChannelError) as raised:
        await ensure_member(client, "SLACK_TECH_SUPPORT_CHANNEL", "#nope", "bb")
    assert str(raised.value).startswith(
        "SLACK_TECH_SUPPORT_CHANNEL: the bot sees no channel '#nope'"
    )
    assert "/invite @bb" in str(raised.value)


async def test_a_private_channel_without_the_bot_says_to_invite_it(slack, client):
    slack.workspace.channels["C0TEAM"].members.discard("U0BOT")
    with pytest.raises(ChannelError, match="/invite @bb"):
        await ensure_member(client, "SLACK_LOGS_CHANNEL", "C0TEAM", "bb")


async def test_the_bot_role_with_a_misnamed_channel_exits_2(slack, tmp_path):
    env = service_environment(
        tmp_path,
        **{
            **DISPATCHER_ENV,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_TECH_SUPPORT_CHANNEL": "#tech-suport",
        },
        SLACK_APP_TOKEN=slack.app_token,
        SLACK_SIGNING_SECRET="signing-secret-value",
        SLACK_API_URL=slack.api_url,
    )
    process = await start(tmp_path, "--role", "bot", env=env)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    last = stderr.decode().splitlines()[-1]
    assert last.startswith("SLACK_TECH_SUPPORT_CHANNEL: the bot sees no channel")
    assert "Traceback" not in stderr.decode()


async def test_slack_failing_at_start_is_waited_out(slack, tmp_path, clean_env):
    # every attempt of the first call fails, so the start itself is retried
    slack.fail_next("auth.test", status=503, times=5)
    async with running_bot(slack, tmp_path) as bot:
        assert (bot.tmp / "check").exists()
    assert len(slack.calls_to("auth.test")) >= 6
