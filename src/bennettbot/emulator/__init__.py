"""A Slack workspace emulator on loopback, for end-to-end tests and the demo.

    async with SlackEmulator() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        ...
        msg = await slack.post("alice", "general", "<@U0BOT> test hello Bob")
        reply = await slack.wait_for_reply("general", msg.ts)

The real slack_sdk Web API client and Socket Mode client work against it
unchanged; only the base URL differs.
"""

from .server import APP_TOKEN, BOT_TOKEN, SlackEmulator
from .socketmode import Ack, Connection, Envelope
from .state import Channel, Ephemeral, File, Message, User, Workspace
from .webapi import UPLOAD, Call

__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "UPLOAD",
    "Ack",
    "Call",
    "Channel",
    "Connection",
    "Envelope",
    "Ephemeral",
    "File",
    "Message",
    "SlackEmulator",
    "User",
    "Workspace",
]
