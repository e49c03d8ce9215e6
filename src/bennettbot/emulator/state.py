"""The emulated workspace: users, conversations, messages, reactions and files.

Plain data and synchronous bookkeeping only; no I/O. The web API and the
Socket Mode server read and change it; tests inspect it through
`SlackEmulator`.
"""

from __future__ import annotations

import itertools
import mimetypes
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

MAX_TEXT = 40_000  # Slack truncates message text beyond this many characters
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_admin: bool = False
    deleted: bool = False


@dataclass
class Channel:
    id: str
    name: str  # "" for a DM
    is_private: bool = False
    is_im: bool = False
    user: str | None = None  # a DM's human side
    members: set[str] = field(default_factory=set)
    creator: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    is_archived: bool = False
    topic: str = ""
    purpose: str = ""

    @property
    def channel_type(self) -> str:
        """The `channel_type` of message events in this conversation."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"


@dataclass(frozen=True, slots=True)
class Ephemeral:
    """A message only ``user`` sees (``chat.postEphemeral``)."""

    channel: str
    user: str
    text: str
    ts: str


@dataclass
class Message:
    channel: str
    ts: str
    user: str | None
    text: str = ""
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    subtype: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    username: str | None = None
    client_msg_id: str | None = None
    edited: JSON | None = None
    files: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def mentions(self) -> list[str]:
        """User ids mentioned with `<@U…>` or `<@U…|name>`."""
        return _MENTION.findall(self.text)


@dataclass
class File:
    id: str
    name: str
    length: int
    user: str
    title: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None  # None until the upload URL received it
    created: int = field(default_factory=lambda: int(time.time()))
    shares: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def filetype(self) -> str:
        ext = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""
        return ext or "binary"

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "text/plain"


class Workspace:
    """One Slack team as the bot sees it."""

    def __init__(
        self,
        *,
        users: Iterable[User],
        channels: Iterable[Channel],
        bot_user_id: str = "U0BOT",
        team_id: str = "T0001",
        team_name: str = "Emulated Workspace",
        domain: str = "emulated",
        app_id: str = "A0BOT",
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.domain = domain
        self.app_id = app_id
        self.users: dict[str, User] = {u.id: u for u in users}
        self.channels: dict[str, Channel] = {c.id: c for c in channels}
        if bot_user_id not in self.users:
            raise ValueError(f"bot user {bot_user_id} is not among the users")
        self.bot = self.users[bot_user_id]
        self.messages: dict[str, list[Message]] = {c: [] for c in self.channels}
        self.files: dict[str, File] = {}
        self._ids = itertools.count(1)
        self._last_us = 0

    @classmethod
    def default(cls) -> Workspace:
        """Team T0001: the bot, alice, bob, a guest, another bot, five channels.

        The bot is in #general, #tech-support, #logs and the private #team,
        but not in #tech or #random; every human has a DM with the bot.
        """
        bot = User(
            "U0BOT", "bennettbot", "Bennett Bot", is_bot=True, bot_id="B0BOT",
            app_id="A0BOT",
        )  # fmt: skip
        alice = User("U0ALICE", "alice", "Alice Example", is_admin=True)
        bob = User("U0BOB", "bob", "Bob Example")
        guest = User("U0GUEST", "guest", "Gus Guest", is_restricted=True)
        other = User(
            "U0OTHERBOT", "otherbot", "Other Bot", is_bot=True, bot_id="B0OTHER",
            app_id="A0OTHER",
        )  # fmt: skip
        humans = {alice.id, bob.id}
        everyone = {*humans, guest.id, bot.id, other.id}
        channels = [
            Channel("C0GENERAL", "general", members=everyone),
            Channel("C0TECH", "tech", members=set(humans)),
            Channel("C0TECHSUP", "tech-support", members={*humans, bot.id}),
            Channel("C0LOGS", "logs", members={alice.id, bot.id}),
            Channel("C0RANDOM", "random", members={*humans, guest.id}),
            Channel("C0TEAM", "team", is_private=True, members={*humans, bot.id}),
        ]  # fmt: skip
        for c in channels:
            c.creator = alice.id
        ws = cls(users=[bot, alice, bob, guest, other], channels=channels)
        for user in (alice, bob, guest):
            ws.dm_with(user.id)
        return ws

    # ids and timestamps

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09X}"

    def next_ts(self) -> str:
        """A fresh message timestamp, strictly increasing across the team."""
        us = max(time.time_ns() // 1000, self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    # lookups

    def find_user(self, ref: str) -> User | None:
        """A user by id or name (with or without `@`)."""
        if ref in self.users:
            return self.users[ref]
        name = ref.removeprefix("@")
        return next((u for u in self.users.values() if u.name == name), None)

    def user(self, ref: str) -> User:
        found = self.find_user(ref)
        if found is None:
            raise KeyError(f"no user {ref!r}")
        return found

    def find_channel(self, ref: str) -> Channel | None:
        """A conversation by id or name (with or without `#`)."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next(
            (c for c in self.channels.values() if c.name == name and not c.is_im),
            None,
        )

    def channel(self, ref: str) -> Channel:
        found = self.find_channel(ref)
        if found is None:
            raise KeyError(f"no channel {ref!r}")
        return found

    def dm_with(self, user_id: str) -> Channel:
        """The DM between `user_id` and the bot, opened on first use."""
        for c in self.channels.values():
            if c.is_im and c.user == user_id:
                return c
        name = self.users[user_id].name.upper().replace(".", "")
        cid = f"D0{name}" if f"D0{name}" not in self.channels else self.new_id("D")
        dm = Channel(cid, "", is_im=True, user=user_id, members={user_id, self.bot.id})
        self.add_channel(dm)
        return dm

    def visible_to_bot(self, channel: Channel) -> bool:
        """Public channels, and private ones and DMs the bot is in."""
        return not (channel.is_private or channel.is_im) or self.bot.id in (
            channel.members
        )

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        return next((m for m in self.messages.get(channel_id, []) if m.ts == ts), None)

    def thread(self, channel_id: str, thread_ts: str) -> list[Message]:
        """The parent (when it exists) followed by its replies, oldest first."""
        return [
            m
            for m in self.messages.get(channel_id, [])
            if m.ts == thread_ts or m.thread_ts == thread_ts
        ]

    # changes

    def add_user(self, user: User) -> User:
        """A new member (a DM with the bot too, unless it is a bot)."""
        if user.id in self.users:
            raise ValueError(f"user id {user.id} already exists")
        self.users[user.id] = user
        if not user.is_bot:
            self.dm_with(user.id)
        return user

    def add_channel(self, channel: Channel) -> Channel:
        if channel.id in self.channels:
            raise ValueError(f"channel id {channel.id} already exists")
        self.channels[channel.id] = channel
        self.messages[channel.id] = []
        return channel

    def create_channel(
        self,
        name: str,
        *,
        creator: str,
        is_private: bool = False,
        members: Iterable[str] = (),
    ) -> Channel:
        if self.find_channel(name) is not None:
            raise ValueError(f"a channel named {name!r} already exists")
        channel = Channel(
            self.new_id("C"),
            name.removeprefix("#"),
            is_private=is_private,
            members={creator, *members},
            creator=creator,
        )
        return self.add_channel(channel)

    def add_message(self, message: Message) -> Message:
        if message.thread_ts is not None:
            parent = self.find_message(message.channel, message.thread_ts)
            if parent is not None:
                if parent.is_reply:  # Slack threads hang off the root only
                    message.thread_ts = parent.thread_ts
                    parent = self.find_message(message.channel, parent.thread_ts or "")
                if parent is not None:
                    parent.thread_ts = parent.ts
                    message.parent_user_id = parent.user
        if len(message.text) > MAX_TEXT:
            message.text = message.text[:MAX_TEXT]
        self.messages[message.channel].append(message)
        return message

    def new_user_message(
        self, user: User, channel: Channel, text: str, thread_ts: str | None
    ) -> Message:
        return self.add_message(
            Message(
                channel=channel.id,
                ts=self.next_ts(),
                user=user.id,
                text=text,
                thread_ts=thread_ts,
                client_msg_id=str(uuid.uuid4()),
            )
        )

    def add_reaction(self, message: Message, name: str, user_id: str) -> bool:
        """False when `user_id` already reacted with `name`."""
        users = message.reactions.setdefault(name, [])
        if user_id in users:
            return False
        users.append(user_id)
        return True

    # API shapes

    def bot_profile(self, user: User) -> JSON:
        return {
            "id": user.bot_id,
            "app_id": user.app_id,
            "name": user.name,
            "deleted": False,
            "team_id": self.team_id,
        }

    def user_payload(self, user: User) -> JSON:
        profile: JSON = {
            "real_name": user.real_name or user.name,
            "display_name": user.name,
            "real_name_normalized": user.real_name or user.name,
            "display_name_normalized": user.name,
            "team": self.team_id,
        }
        if user.is_bot:
            profile |= {"bot_id": user.bot_id, "api_app_id": user.app_id}
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name or user.name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": user.is_restricted,
            "is_ultra_restricted": user.is_ultra_restricted,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }

    def channel_payload(self, channel: Channel) -> JSON:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": channel.name == "general",
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "context_team_id": self.team_id,
            "creator": channel.creator,
            "is_member": self.bot.id in channel.members,
            "topic": {"value": channel.topic, "creator": "", "last_set": 0},
            "purpose": {"value": channel.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
            "num_members": len(channel.members),
        }

    def permalink(self, message: Message) -> str:
        link = (
            f"https://{self.domain}.slack.com/archives/{message.channel}"
            f"/p{message.ts.replace('.', '')}"
        )
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return link

    def file_payload(self, file: File) -> JSON:
        shares: dict[str, dict[str, list[JSON]]] = {}
        for channel_id, ts, thread_ts in file.shares:
            channel = self.channels[channel_id]
            kind = "private" if channel.is_private or channel.is_im else "public"
            share: JSON = {"ts": ts, "channel_name": channel.name}
            share |= {"team_id": self.team_id, "reply_users": [], "reply_count": 0}
            if thread_ts:
                share["thread_ts"] = thread_ts
            shares.setdefault(kind, {}).setdefault(channel_id, []).append(share)
        base = f"https://files.slack.com/files-pri/{self.team_id}-{file.id}"
        return {
            "id": file.id,
            "created": file.created,
            "timestamp": file.created,
            "name": file.name,
            "title": file.title or file.name,
            "mimetype": file.mimetype,
            "filetype": file.filetype,
            "pretty_type": file.filetype.upper(),
            "user": file.user,
            "user_team": self.team_id,
            "editable": False,
            "size": file.length,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": any(self.visible_to_everyone(c) for c, _, _ in file.shares),
            "url_private": f"{base}/{file.name}",
            "url_private_download": f"{base}/download/{file.name}",
            "permalink": f"https://{self.domain}.slack.com/files/{file.user}/{file.id}/{file.name}",
            "channels": sorted({c for c, _, _ in file.shares}),
            "shares": shares,
        }  # fmt: skip

    def visible_to_everyone(self, channel_id: str) -> bool:
        channel = self.channels[channel_id]
        return not (channel.is_private or channel.is_im)

    def message_payload(self, message: Message) -> JSON:
        """A message as the Web API and message events show it (no `channel`)."""
        d: JSON = {"type": "message", "ts": message.ts}
        optional = {
            "subtype": message.subtype,
            "user": message.user,
            "text": message.text,
            "client_msg_id": message.client_msg_id,
        }
        d |= {key: value for key, value in optional.items() if value or key == "text"}
        if message.bot_id:
            d |= self._bot_fields(message)
        if message.username:
            d["username"] = message.username
        if message.blocks is not None:
            d["blocks"] = message.blocks
        d["team"] = self.team_id
        if message.thread_ts:
            d |= self._thread_fields(message)
        if message.edited:
            d["edited"] = dict(message.edited)
        if message.files:
            d["files"] = [self.file_payload(self.files[f]) for f in message.files]
            d["upload"] = False
            d["display_as_bot"] = False
        if message.reactions:
            d["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in message.reactions.items()
                if users
            ]
        return d

    def _bot_fields(self, message: Message) -> JSON:
        d: JSON = {"bot_id": message.bot_id}
        if message.app_id:
            d["app_id"] = message.app_id
        sender = self.find_user(message.user or "")
        if sender is not None and sender.is_bot:
            d["bot_profile"] = self.bot_profile(sender)
        return d

    def _thread_fields(self, message: Message) -> JSON:
        d: JSON = {"thread_ts": message.thread_ts}
        if message.is_reply:
            d["parent_user_id"] = message.parent_user_id
        else:
            replies = self.thread(message.channel, message.ts)[1:]
            d["reply_count"] = len(replies)
            d["reply_users"] = sorted({r.user for r in replies if r.user})
            d["latest_reply"] = replies[-1].ts if replies else message.ts
        return d
