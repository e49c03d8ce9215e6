"""The Slack emulator, driven by the real slack_sdk clients."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import WSMessage
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import (
    FixedValueRetryIntervalCalculator,
)
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bennettbot.emulator import UPLOAD, Channel, SlackEmulator, User, Workspace

TIMEOUT = 10.0  # generous: the suite must pass on a loaded 2-core machine


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


class Receiver:
    """A real SocketModeClient that acks everything and records what it got."""

    def __init__(self, slack: SlackEmulator, *, ack: bool = True) -> None:
        self.ack = ack
        self.raw: list[dict[str, Any]] = []
        self.requests: list[SocketModeRequest] = []
        self._cond = asyncio.Condition()
        self.client = SocketModeClient(
            app_token=slack.app_token,
            web_client=AsyncWebClient(base_url=slack.api_url),
            ping_interval=0.5,
        )
        # every text frame, including `disconnect` (which the client handles
        # itself and never passes to message_listeners)
        self.client.on_message_listeners.append(self._on_frame)
        self.client.socket_mode_request_listeners.append(self._on_request)

    # Record before the first await: listeners run as concurrent tasks, and
    # only their synchronous start is guaranteed to follow arrival order.

    async def _on_frame(self, frame: WSMessage) -> None:
        self.raw.append(json.loads(frame.data))
        await self._notify()

    async def _on_request(self, client: Any, req: SocketModeRequest) -> None:
        self.requests.append(req)
        if self.ack:
            response = SocketModeResponse(envelope_id=req.envelope_id)
            await client.send_socket_mode_response(response)
        await self._notify()

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait(self, predicate: Callable[[], Any]) -> Any:
        async with asyncio.timeout(TIMEOUT), self._cond:
            return await self._cond.wait_for(predicate)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            r.payload["event"]
            for r in self.requests
            if kind is None or r.payload["event"]["type"] == kind
        ]


@pytest.fixture
async def receiver(slack: SlackEmulator) -> AsyncIterator[Receiver]:
    receiver = Receiver(slack)
    await receiver.client.connect()
    await slack.wait_for_connection(1, TIMEOUT)
    yield receiver
    await receiver.client.close()


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


# Web API


async def test_auth_test(client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["user_id"] == "U0BOT"
    assert response["bot_id"] == "B0BOT"
    assert response["team_id"] == "T0001"
    assert response["user"] == "bennettbot"


async def test_tokens_are_checked(slack: SlackEmulator) -> None:
    stranger = AsyncWebClient(token="xoxb-nope", base_url=slack.api_url)
    assert (await api_error(stranger.auth_test())).response["error"] == "invalid_auth"
    app = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    error = await api_error(app.chat_postMessage(channel="general", text="x"))
    assert error.response["error"] == "not_allowed_token_type"
    bot = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    error = await api_error(bot.apps_connections_open(app_token=slack.bot_token))
    assert error.response["error"] == "not_allowed_token_type"
    anonymous = AsyncWebClient(base_url=slack.api_url)
    assert (await api_error(anonymous.auth_test())).response["error"] == "not_authed"


async def test_apps_connections_open_returns_a_websocket_url(
    slack: SlackEmulator,
) -> None:
    web = AsyncWebClient(base_url=slack.api_url)
    response = await web.apps_connections_open(app_token=slack.app_token)
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/link/\?ticket=\S+", response["url"])


async def test_post_message_by_name_and_id(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    for ref in ("#logs", "logs", "C0LOGS"):
        response = await client.chat_postMessage(channel=ref, text=f"to {ref}")
        assert response["channel"] == "C0LOGS"
        assert response["message"]["bot_id"] == "B0BOT"
        assert response["message"]["user"] == "U0BOT"
    assert [m.text for m in slack.messages("logs")] == [
        "to #logs",
        "to logs",
        "to C0LOGS",
    ]
    assert [c.method for c in slack.calls] == ["chat.postMessage"] * 3
    assert slack.calls[0].params["channel"] == "#logs"


async def test_post_message_in_thread_with_blocks(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    asked = await slack.post("alice", "general", "<@U0BOT> test hello Bob")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    response = await client.chat_postMessage(
        channel="C0GENERAL", thread_ts=asked.ts, text="hi", blocks=blocks
    )
    assert response["message"]["thread_ts"] == asked.ts
    [reply] = slack.replies("general", asked.ts)
    assert reply.ts == response["ts"] and reply.blocks == blocks
    assert reply.parent_user_id == "U0ALICE"
    assert slack.replies("general", asked.ts, user="alice") == []
    assert [m.ts for m in slack.thread("general", asked.ts)] == [asked.ts, reply.ts]
    error = await api_error(
        client.chat_postMessage(
            channel="general", text="x", blocks=[{"type": "nonsense"}]
        )
    )
    assert error.response["error"] == "invalid_blocks"
    with pytest.warns(UserWarning, match="text"):  # slack_sdk's own warning
        error = await api_error(client.chat_postMessage(channel="general"))
    assert error.response["error"] == "no_text"


async def test_post_message_needs_membership(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    error = await api_error(client.chat_postMessage(channel="#tech", text="x"))
    assert error.response["error"] == "not_in_channel"
    error = await api_error(client.chat_postMessage(channel="#nope", text="x"))
    assert error.response["error"] == "channel_not_found"
    await client.conversations_join(channel="C0TECH")
    await client.chat_postMessage(channel="#tech", text="x")
    again = await client.conversations_join(channel="C0TECH")
    assert again["warning"] == "already_in_channel"
    error = await api_error(client.conversations_join(channel="C0TEAM"))
    assert error.response["error"] == "method_not_supported_for_channel_type"
    info = await client.conversations_info(channel="C0TECH")
    assert info["channel"]["is_member"] is True
    members = await client.conversations_members(channel="C0TECH")
    assert "U0BOT" in members["members"]


async def test_post_message_to_a_user_goes_to_their_dm(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(channel="U0BOB", text="psst")
    assert response["channel"] == "D0BOB"
    assert slack.messages("D0BOB")[0].text == "psst"


async def test_update_and_permalink(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="general", text="before")
    await client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="after")
    message = slack.message("general", posted["ts"])
    assert message.text == "after" and message.edited["user"] == "U0BOT"
    link = await client.chat_getPermalink(channel="C0GENERAL", message_ts=posted["ts"])
    digits = posted["ts"].replace(".", "")
    assert (
        link["permalink"] == f"https://emulated.slack.com/archives/C0GENERAL/p{digits}"
    )
    reply = await client.chat_postMessage(
        channel="general", text="r", thread_ts=posted["ts"]
    )
    link = await client.chat_getPermalink(channel="C0GENERAL", message_ts=reply["ts"])
    assert link["permalink"].endswith(f"?thread_ts={posted['ts']}&cid=C0GENERAL")
    asked = await slack.post("alice", "general", "mine")
    error = await api_error(
        client.chat_update(channel="C0GENERAL", ts=asked.ts, text="hijack")
    )
    assert error.response["error"] == "cant_update_message"
    error = await api_error(
        client.chat_getPermalink(channel="C0GENERAL", message_ts="1.000001")
    )
    assert error.response["error"] == "message_not_found"


async def test_reactions(slack: SlackEmulator, client: AsyncWebClient) -> None:
    asked = await slack.post("bob", "general", "tech-support please")
    await client.reactions_add(channel="C0GENERAL", timestamp=asked.ts, name="sos")
    assert slack.reactions("general", asked.ts) == {"sos": ["U0BOT"]}
    error = await api_error(
        client.reactions_add(channel="C0GENERAL", timestamp=asked.ts, name="sos")
    )
    assert error.response["error"] == "already_reacted"
    error = await api_error(
        client.reactions_add(channel="C0GENERAL", timestamp=asked.ts, name=":x:")
    )
    assert error.response["error"] == "invalid_name"
    assert await slack.react("alice", "general", asked.ts, "sos")
    assert slack.reactions("general", asked.ts) == {"sos": ["U0BOT", "U0ALICE"]}


async def test_files_upload_v2_shares_a_file_in_the_thread(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    asked = await slack.post("alice", "general", "<@U0BOT> op logs")
    content = "line\n" * 10_000
    response = await client.files_upload_v2(
        channel="C0GENERAL",
        thread_ts=asked.ts,
        content=content,
        filename="output.txt",
        initial_comment="Here is the output",
    )
    file = response["file"]
    assert file["name"] == "output.txt" and file["size"] == len(content)
    [share] = file["shares"]["public"]["C0GENERAL"]
    assert share["thread_ts"] == asked.ts
    [reply] = slack.replies("general", asked.ts, user="bennettbot")
    assert reply.files == [file["id"]] and reply.text == "Here is the output"
    assert reply.ts == share["ts"]
    assert slack.file_content(file["id"]) == content.encode()
    methods = [c.method for c in slack.calls]
    assert methods == [
        "files.getUploadURLExternal",
        UPLOAD,
        "files.completeUploadExternal",
    ]


async def test_retired_files_upload(client: AsyncWebClient) -> None:
    error = await api_error(client.api_call("files.upload", data={"content": "x"}))
    assert error.response["error"] == "method_deprecated"


async def test_conversations_list_paginates(client: AsyncWebClient) -> None:
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = await client.conversations_list(limit=2, cursor=cursor)
        pages += 1
        names += [c["name"] for c in response["channels"]]
        cursor = response["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert names == ["general", "tech", "tech-support", "logs", "random"]
    private = await client.conversations_list(types="private_channel,im")
    ids = [c["id"] for c in private["channels"]]
    assert ids == ["C0TEAM", "D0ALICE", "D0BOB", "D0GUEST"]
    assert private["channels"][0]["is_private"] is True


async def test_users(client: AsyncWebClient) -> None:
    guest = (await client.users_info(user="U0GUEST"))["user"]
    assert guest["is_restricted"] is True and guest["is_bot"] is False
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert alice["is_restricted"] is False and alice["is_ultra_restricted"] is False
    error = await api_error(client.users_info(user="U0NOBODY"))
    assert error.response["error"] == "user_not_found"
    members = (await client.users_list())["members"]
    assert {m["name"] for m in members} >= {"alice", "bob", "guest", "bennettbot"}
    assert next(m for m in members if m["id"] == "U0BOT")["is_bot"] is True


async def test_rate_limit_is_retried_after_retry_after(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    response = await client.chat_postMessage(channel="general", text="eventually")
    assert response["ok"]
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200]
    assert [m.text for m in slack.messages("general")] == ["eventually"]


async def test_rate_limit_without_retry_handler(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    error = await api_error(client.chat_postMessage(channel="general", text="x"))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "7"
    assert slack.messages("general") == []


async def test_server_errors_are_retried(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    quick = FixedValueRetryIntervalCalculator(fixed_internal=0.01)
    client.retry_handlers.append(
        AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=quick)
    )
    slack.fail_next("chat.postMessage", status=500)
    slack.fail_next("chat.postMessage", status=503)
    await client.chat_postMessage(channel="general", text="third time")
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [500, 503, 200]


async def test_injected_api_error(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.fail_next("reactions.add", status=200, error="already_reacted")
    asked = await slack.post("bob", "general", "hi")
    error = await api_error(
        client.reactions_add(channel="C0GENERAL", timestamp=asked.ts, name="sos")
    )
    assert error.response["error"] == "already_reacted"
    assert slack.reactions("general", asked.ts) == {}


# Socket Mode


async def test_hello_on_connect(slack: SlackEmulator, receiver: Receiver) -> None:
    hello = await receiver.wait(lambda: receiver.raw and receiver.raw[0])
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"]["app_id"] == "A0BOT"
    assert "debug_info" in hello


async def test_mention_in_a_channel_delivers_app_mention_and_message(
    slack: SlackEmulator, receiver: Receiver
) -> None:
    asked = await slack.post("alice", "general", "<@U0BOT> test hello Bob")
    envelopes = slack.envelopes_for(asked)
    assert [e.event["type"] for e in envelopes] == ["app_mention", "message"]
    await receiver.wait(lambda: len(receiver.requests) == 2)
    mention, message = receiver.events()
    assert mention["text"] == message["text"] == "<@U0BOT> test hello Bob"
    assert mention["user"] == message["user"] == "U0ALICE"
    assert mention["ts"] == message["ts"] == asked.ts
    assert mention["channel"] == message["channel"] == "C0GENERAL"
    assert message["channel_type"] == "channel"
    request = receiver.requests[0]
    assert request.type == "events_api" and request.retry_attempt == 0
    payload = request.payload
    assert payload["type"] == "event_callback"
    assert payload["team_id"] == "T0001" and payload["api_app_id"] == "A0BOT"
    assert payload["authorizations"][0]["user_id"] == "U0BOT"
    assert payload["event_id"] != receiver.requests[1].payload["event_id"]
    acks = await slack.wait_for(lambda: all(e.ack for e in envelopes) and envelopes)
    assert {a.ack.envelope_id for a in acks} == {e.envelope_id for e in envelopes}
    assert all(a.ack.latency is not None and a.ack.latency >= 0 for a in acks)
    assert len(slack.acks) == 2


async def test_where_events_go(slack: SlackEmulator, receiver: Receiver) -> None:
    await slack.dm("bob", "<@U0BOT> status")
    await slack.post("alice", "team", "private <@U0BOT> help")
    await slack.post("alice", "tech", "<@U0BOT> the bot is not here")
    await slack.post("alice", "general", "no mention")
    await receiver.wait(lambda: len(receiver.requests) == 4)
    kinds = [(e["type"], e.get("channel_type")) for e in receiver.events()]
    assert kinds == [
        ("message", "im"),
        ("app_mention", None),
        ("message", "group"),
        ("message", "channel"),
    ]
    assert receiver.events()[0]["channel"] == "D0BOB"


async def test_edits_bot_messages_and_new_channels(
    slack: SlackEmulator, receiver: Receiver
) -> None:
    asked = await slack.post("alice", "general", "hello")
    await slack.edit("alice", "general", asked.ts, "hello tech-support")
    await slack.post_as_bot("general", "beep")
    created = await slack.create_channel("new-project")
    await receiver.wait(lambda: len(receiver.requests) == 4)
    _, changed, beep, new = receiver.events()
    assert changed["subtype"] == "message_changed"
    assert changed["message"]["text"] == "hello tech-support"
    assert changed["message"]["ts"] == asked.ts
    assert changed["message"]["edited"]["user"] == "U0ALICE"
    assert changed["previous_message"]["text"] == "hello"
    assert changed["channel"] == "C0GENERAL" and changed["channel_type"] == "channel"
    assert beep["subtype"] == "bot_message" and beep["bot_id"] == "B0OTHER"
    assert new["type"] == "channel_created"
    assert (
        new["channel"]["id"] == created.id and new["channel"]["name"] == "new-project"
    )


async def test_the_bots_own_posts_come_back_as_events(
    slack: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    await client.chat_postMessage(channel="general", text="Command `x` succeeded")
    await receiver.wait(lambda: receiver.requests)
    [event] = receiver.events()
    assert event["bot_id"] == "B0BOT" and event["user"] == "U0BOT"
    assert "subtype" not in event


@pytest.mark.parametrize("graceful", [False, True], ids=["abrupt", "close-frame"])
async def test_reconnects_after_a_dropped_socket(
    slack: SlackEmulator, receiver: Receiver, graceful: bool
) -> None:
    assert await slack.drop_socket(graceful=graceful) == 1
    asked = await slack.post("alice", "general", "<@U0BOT> while away")
    await slack.wait_for_connection(2, TIMEOUT)
    first = slack.connections[0]
    assert not first.open
    await receiver.wait(lambda: len(receiver.requests) == 2)
    assert {e["ts"] for e in receiver.events()} == {asked.ts}
    assert all(e.connection != first.id for e in slack.envelopes_for(asked))
    await slack.wait_for(lambda: all(e.ack for e in slack.envelopes), TIMEOUT)


async def test_reconnects_after_a_disconnect_message(
    slack: SlackEmulator, receiver: Receiver
) -> None:
    assert await slack.send_disconnect()
    await slack.wait_for_connection(2, TIMEOUT)
    first = slack.connections[0]
    await slack.wait_for(lambda: not first.open, TIMEOUT)  # the client closes it
    disconnect = await receiver.wait(
        lambda: next((m for m in receiver.raw if m["type"] == "disconnect"), None)
    )
    assert disconnect["reason"] == "refresh_requested"
    asked = await slack.post("bob", "general", "<@U0BOT> after")
    await receiver.wait(lambda: len(receiver.requests) == 2)
    assert all(e.connection != first.id for e in slack.envelopes_for(asked))


async def test_redelivery_carries_retry_attempt(
    slack: SlackEmulator, receiver: Receiver
) -> None:
    receiver.ack = False
    asked = await slack.dm("alice", "status")
    [first] = slack.envelopes_for(asked)
    again = await slack.redeliver(first.envelope_id)
    await receiver.wait(lambda: len(receiver.requests) == 2)
    original, retry = receiver.requests
    assert retry.envelope_id == again.envelope_id != original.envelope_id
    assert retry.retry_attempt == 1 and retry.retry_reason == "timeout"
    assert retry.payload["event_id"] == original.payload["event_id"]
    assert first.ack is None


async def test_envelopes_wait_for_a_connection(slack: SlackEmulator) -> None:
    asked = await slack.post("alice", "general", "<@U0BOT> early")
    assert len(slack.socket.waiting) == 2
    receiver = Receiver(slack)
    await receiver.client.connect()
    try:
        await receiver.wait(lambda: len(receiver.requests) == 2)
        assert [e["type"] for e in receiver.events()] == ["app_mention", "message"]
        assert all(e["ts"] == asked.ts for e in receiver.events())
        assert slack.socket.waiting == []
    finally:
        await receiver.client.close()


async def test_wait_for_reply_and_timeout(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    asked = await slack.post("alice", "general", "<@U0BOT> hi")

    async def answer() -> None:
        await client.chat_postMessage(channel="general", thread_ts=asked.ts, text="ok")

    task = asyncio.create_task(answer())
    reply = await slack.wait_for_reply(
        "general", asked.ts, contains="ok", timeout=TIMEOUT
    )
    await task
    assert reply.user == "U0BOT"
    with pytest.raises(TimeoutError):
        await slack.wait_for_reply("general", asked.ts, count=2, timeout=0.05)


async def test_raw_event_delivery(slack: SlackEmulator, receiver: Receiver) -> None:
    envelope = await slack.send_event({"type": "team_join", "user": {"id": "U9"}})
    await receiver.wait(lambda: receiver.requests)
    assert receiver.requests[0].envelope_id == envelope.envelope_id
    assert json.loads(json.dumps(receiver.events()[0])) == envelope.event


async def test_a_custom_workspace() -> None:
    bot = User("U0B", "ebmbot", is_bot=True, bot_id="B0B", app_id="A0B")
    carol = User("U0CAROL", "carol")
    ops = Channel("C0OPS", "ops", members={bot.id, carol.id})
    workspace = Workspace(users=[bot, carol], channels=[ops], bot_user_id="U0B")
    async with SlackEmulator(
        workspace, bot_token="xoxb-1", app_token="xapp-1"
    ) as slack:
        client = AsyncWebClient(token="xoxb-1", base_url=slack.api_url)
        assert (await client.auth_test())["user_id"] == "U0B"
        asked = await slack.post("carol", "ops", "<@U0B> hi")
        assert [e.event["type"] for e in slack.envelopes_for(asked)] == [
            "app_mention",
            "message",
        ]
        dm = await slack.dm("carol", "hello")
        assert dm.channel.startswith("D")
