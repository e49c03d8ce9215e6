"""Events API payloads (the `payload` of a Socket Mode `events_api` envelope).

Shapes follow Slack's published examples for `event_callback`,
`app_mention`, `message` (and its `message_changed`, `bot_message` and
`file_share` subtypes) and `channel_created`; and the interactive
`block_actions` payload of a button press.
"""

from __future__ import annotations

import itertools
import time

from .state import JSON, Channel, Message, User, Workspace

VERIFICATION_TOKEN = "emulated-verification-token"  # noqa: S105 - not a secret
_event_ids = itertools.count(1)


def new_event_id() -> str:
    return f"Ev{next(_event_ids):010X}"


def event_callback(ws: Workspace, event: JSON) -> JSON:
    """Wrap `event` in the outer Events API payload."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": new_event_id(),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot.id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def message_event(ws: Workspace, message: Message) -> JSON:
    """`message` (message.channels / message.groups / message.im)."""
    event = ws.message_payload(message)
    event.pop("reactions", None)
    event |= {
        "channel": message.channel,
        "event_ts": message.ts,
        "channel_type": ws.channels[message.channel].channel_type,
    }
    return event


def app_mention_event(ws: Workspace, message: Message) -> JSON:
    event: JSON = {"type": "app_mention"}
    payload = ws.message_payload(message)
    for key in ("user", "bot_id", "app_id", "bot_profile", "username", "blocks"):
        if key in payload:
            event[key] = payload[key]
    event |= {"text": message.text, "ts": message.ts, "team": ws.team_id}
    if message.client_msg_id:
        event["client_msg_id"] = message.client_msg_id
    if message.thread_ts:
        event["thread_ts"] = message.thread_ts
    if message.is_reply:
        event["parent_user_id"] = message.parent_user_id
    if message.edited:
        event["edited"] = dict(message.edited)
    event |= {"channel": message.channel, "event_ts": message.ts}
    return event


def message_changed_event(
    ws: Workspace, message: Message, previous: JSON, event_ts: str
) -> JSON:
    current = ws.message_payload(message)
    current.pop("reactions", None)
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": message.channel,
        "ts": event_ts,
        "event_ts": event_ts,
        "message": current,
        "previous_message": previous,
        "channel_type": ws.channels[message.channel].channel_type,
    }


def channel_created_event(channel: Channel) -> JSON:
    return {
        "type": "channel_created",
        "channel": {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "created": channel.created,
            "creator": channel.creator,
            "is_channel": True,
            "is_private": False,
            "is_shared": False,
            "is_org_shared": False,
        },
        "event_ts": f"{time.time():.6f}",
    }


def events_for_message(ws: Workspace, message: Message) -> list[JSON]:
    """What Slack sends the bot for a new message: nothing when the bot is not
    in the conversation; in a DM one `message` (never `app_mention`);
    elsewhere an `app_mention` when the bot is mentioned plus the `message`.
    """
    channel = ws.channels[message.channel]
    if ws.bot.id not in channel.members:
        return []
    events = []
    mentioned = ws.bot.id in message.mentions() and message.user != ws.bot.id
    if mentioned and not channel.is_im:
        events.append(app_mention_event(ws, message))
    events.append(message_event(ws, message))
    return events


def block_actions(
    ws: Workspace, user: User, message: Message, block: JSON, button: JSON
) -> JSON:
    """The payload of `user` pressing `button` (in `block`) of `message`."""
    channel = ws.channels[message.channel]
    return {
        "type": "block_actions",
        "user": {
            "id": user.id,
            "username": user.name,
            "name": user.name,
            "team_id": ws.team_id,
        },
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": False,
        },
        "trigger_id": f"{int(time.time())}.{new_event_id()}",
        "team": {"id": ws.team_id, "domain": ws.domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "message": {**ws.message_payload(message), "channel": channel.id},
        "state": {"values": {}},
        "response_url": "",
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": block.get("block_id", ""),
                "text": button.get("text", {}),
                "value": button.get("value", ""),
                "style": button.get("style", ""),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
