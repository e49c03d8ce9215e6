"""Looking up Slack channels by name (settings and job config may name them)."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..models import StartupError


class ChannelError(StartupError):
    """A channel named in the settings cannot be used; one line, naming the
    variable."""


def looks_like_id(name_or_id: str) -> bool:
    return (
        len(name_or_id) > 1
        and name_or_id[0] in "CGD"
        and name_or_id.isupper()
        and name_or_id.isalnum()
    )


async def channel_id(client: AsyncWebClient, name_or_id: str) -> str:
    """The id of a channel given by name (``logs``, ``#logs``) or id."""
    name = name_or_id.removeprefix("#")
    if not name or looks_like_id(name):
        return name
    async for page in await client.conversations_list(
        types="public_channel,private_channel", exclude_archived=True, limit=200
    ):
        for channel in page["channels"]:
            if channel["name"] == name:
                return channel["id"]
    return name  # unknown: Slack will say so when it is used


async def find_channel(
    client: AsyncWebClient, name_or_id: str
) -> dict[str, Any] | None:
    """The channel given by name or id, as ``conversations.list`` or
    ``conversations.info`` describe it; None when the bot cannot see it (it
    does not exist, or it is private and the bot is not in it)."""
    name = name_or_id.removeprefix("#")
    if looks_like_id(name):
        try:
            response = await client.conversations_info(channel=name)
        except SlackApiError as exc:
            if exc.response.get("error") == "channel_not_found":
                return None
            raise
        return response["channel"]
    async for page in await client.conversations_list(
        types="public_channel,private_channel", exclude_archived=True, limit=200
    ):
        for channel in page["channels"]:
            if channel["name"] == name:
                return channel
    return None


async def ensure_member(
    client: AsyncWebClient, variable: str, name_or_id: str, bot_name: str
) -> str:
    """Make sure the bot is in the channel that setting ``variable`` names
    (joining it if public); its id. ``ChannelError`` when it cannot be."""
    found = await find_channel(client, name_or_id)
    if found is None:
        raise ChannelError(
            f"{variable}: the bot sees no channel {name_or_id!r}: create it, or, "
            f"if it is private, invite the bot to it (/invite @{bot_name})"
        )
    if not found.get("is_member", True):
        if found.get("is_private"):
            raise ChannelError(
                f"{variable}: the bot is not in the private channel "
                f"{name_or_id!r}: invite it (/invite @{bot_name})"
            )
        await client.conversations_join(channel=found["id"])
    return found["id"]
