"""Looking up Slack channels by name (settings and job config may name them)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient


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
