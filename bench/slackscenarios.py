"""What the Slack benchmarks have the emulator do, run in the emulator's loop.

Each scenario is ``async def NAME(slack, **kwargs) -> JSON`` and returns
plain data, so that it can run on a thread of the benchmark's process or in
a process of its own (``bench.slackhost``) alike. Every time is
``time.perf_counter()`` taken in the emulator, so one clock measures both
ends of a latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bennettbot.emulator import Envelope, Message, SlackEmulator, Workspace

JSON = dict[str, Any]
CHANNEL = "C0GENERAL"
LOGS = "C0LOGS"
ACCEPTED = "white_check_mark"


class StampedWorkspace(Workspace):
    """The default workspace, recording when each message was added
    (``time.perf_counter()``) and telling ``on_message`` at once."""

    def __init__(self, **kwargs: Any) -> None:
        self.on_message: Callable[[Message, float], None] | None = None
        self.bot_messages = 0
        super().__init__(**kwargs)

    def add_message(self, message: Message) -> Message:
        added = super().add_message(message)
        now = time.perf_counter()
        if added.user == self.bot.id:
            self.bot_messages += 1
        if self.on_message is not None:
            self.on_message(added, now)
        return added


def new_emulator() -> SlackEmulator:
    return SlackEmulator(StampedWorkspace.default())


def stamped(slack: SlackEmulator) -> StampedWorkspace:
    workspace = slack.workspace
    assert isinstance(workspace, StampedWorkspace)
    return workspace


def all_acked(slack: SlackEmulator) -> bool:
    """Every envelope sent so far has had its ack (one ack per envelope)."""
    return len(slack.socket.acks) >= len(slack.socket.envelopes)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# ------------------------------------------------------------ helpers ----


async def post_steady(
    slack: SlackEmulator, text: str, rate: float, count: int
) -> tuple[list[Message], float, list[float]]:
    """``count`` mentions, the i-th due at ``start + i / rate``: the messages,
    the seconds taken, and how late (ms) each post began."""
    messages, late = [], []
    began = time.perf_counter()
    for index in range(count):
        due = began + index / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        late.append((time.perf_counter() - due) * 1000)
        messages.append(await slack.post("alice", "general", text))
    return messages, time.perf_counter() - began, late


async def settle(
    slack: SlackEmulator, replies: int, timeout: float, poll: float = 0.05
) -> bool:
    """Wait, polling coarsely (so that waiting costs the bot next to nothing),
    until the bot has posted ``replies`` messages in all and every envelope
    is acked. False on timeout."""
    workspace = stamped(slack)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if workspace.bot_messages >= replies and all_acked(slack):
            return True
        await asyncio.sleep(poll)
    return False


def ack_data(envelopes: list[Envelope]) -> JSON:
    return {
        "count": len(envelopes),
        "acked": sum(1 for e in envelopes if e.ack is not None),
        "latencies_ms": [
            e.ack.latency * 1000
            for e in envelopes
            if e.ack is not None and e.ack.latency is not None
        ],
    }


def split_envelopes(slack: SlackEmulator, messages: list[Message], since: int) -> JSON:
    """The envelopes sent since the ``since``-th, split into the mentions'
    (``app_mention`` and ``message``) and the rest: the bot's own replies
    delivered back to it, as Slack delivers them."""
    asked = {m.ts for m in messages}
    mentions: list[Envelope] = []
    echoes: list[Envelope] = []
    for envelope in list(slack.socket.envelopes.values())[since:]:
        event = envelope.event
        ours = event.get("channel") == CHANNEL and event.get("ts") in asked
        (mentions if ours else echoes).append(envelope)
    sent = [e.sent_at for e in mentions if e.sent_at is not None]
    return {
        "mentions": ack_data(mentions),
        "echoes": ack_data(echoes),
        "send_span_ms": (max(sent) - min(sent)) * 1000 if sent else None,
    }


# ---------------------------------------------------------- scenarios ----


async def connected(slack: SlackEmulator) -> JSON:
    connection = await slack.wait_for_connection(timeout=15)
    return {"connection": connection.id}


async def steady(
    slack: SlackEmulator,
    *,
    text: str,
    rate: float,
    count: int,
    warm_up: int,
    warm_rate: float,
) -> JSON:
    """A warm-up at ``warm_rate``, then ``count`` mentions at ``rate``/s."""
    await post_steady(slack, text, warm_rate, warm_up)
    if not await settle(slack, warm_up, 30.0):
        raise RuntimeError("the warm-up mentions were not all answered")
    since = len(slack.socket.envelopes)
    cpu = cpu_seconds()
    messages, elapsed, late = await post_steady(slack, text, rate, count)
    settled = await settle(slack, warm_up + count, 60.0)
    return split_envelopes(slack, messages, since) | {
        "elapsed": elapsed,
        "late_ms": late,
        "settled": settled,
        "emulator_cpu": cpu_seconds() - cpu,
    }


async def burst(
    slack: SlackEmulator, *, text: str, count: int, timeline: bool = False
) -> JSON:
    """``count`` mentions back to back, never yielding on purpose. With
    ``timeline``, also each envelope's id, type, send and ack times."""
    since, calls = len(slack.socket.envelopes), len(slack.calls)
    cpu = cpu_seconds()
    began = time.perf_counter()
    messages = [await slack.post("alice", "general", text) for _ in range(count)]
    elapsed = time.perf_counter() - began
    settled = await settle(slack, count, 60.0)
    result = split_envelopes(slack, messages, since) | {
        "elapsed": elapsed,
        "settled": settled,
        "emulator_cpu": cpu_seconds() - cpu,
        "calls": dict(Counter(c.method for c in slack.calls[calls:])),
    }
    if timeline:
        result["timeline"] = [
            [e.envelope_id, e.event.get("type"), e.sent_at, e.ack and e.ack.received_at]
            for e in list(slack.socket.envelopes.values())[since:]
        ]
    return result


class Sample:
    """One mention of ``mentions``: watches the messages the emulator records."""

    def __init__(self, workspace: StampedWorkspace, starting: str) -> None:
        loop = asyncio.get_running_loop()
        self._alice = workspace.user("alice").id
        self._bot = workspace.bot.id
        self._starting = starting
        self.asked_ts: str | None = None
        self.started: asyncio.Future[float] = loop.create_future()
        self.result: asyncio.Future[tuple[float, str]] = loop.create_future()

    def seen(self, message: Message, at: float) -> None:
        if message.user == self._alice and message.channel == CHANNEL:
            self.asked_ts = self.asked_ts or message.ts
        elif message.channel == LOGS and message.text == self._starting:
            if not self.started.done():
                self.started.set_result(at)
        elif (
            message.user == self._bot
            and message.thread_ts is not None
            and message.thread_ts == self.asked_ts
            and not self.result.done()
        ):
            self.result.set_result((at, message.text))


async def mentions(
    slack: SlackEmulator,
    *,
    text: str,
    job_type: str,
    expected: str,
    count: int,
    pause: float,
    timeout: float = 10.0,
) -> JSON:
    """``count`` mentions one after another, each once the previous one is
    over (result posted, reaction added, every envelope acked). Per mention,
    from its ``app_mention`` envelope being sent: its ack, the ✅ reaction
    (the job is queued), "about to start" in #logs, the result in the thread.
    """
    workspace = stamped(slack)
    starting = f"Command `{job_type}` about to start"
    columns: dict[str, list[float]] = {
        "ack": [],
        "queued": [],
        "started": [],
        "result": [],
    }
    try:
        for _ in range(count):
            sample = Sample(workspace, starting)
            workspace.on_message = sample.seen
            message = await slack.post("alice", "general", text)
            async with asyncio.timeout(timeout):
                started_at = await sample.started
                result_at, reply = await sample.result
            if reply != expected:
                raise RuntimeError(f"unexpected reply {reply!r} to {text!r}")
            await slack.wait_for(
                lambda m=message: all_acked(slack) and ACCEPTED in m.reactions,
                timeout,
            )
            envelope = mention_envelope(slack, message)
            assert envelope.sent_at is not None and envelope.ack is not None
            sent_at = envelope.sent_at
            columns["ack"].append((envelope.ack.received_at - sent_at) * 1000)
            columns["queued"].append((reaction_at(slack, message) - sent_at) * 1000)
            columns["started"].append((started_at - sent_at) * 1000)
            columns["result"].append((result_at - sent_at) * 1000)
            await asyncio.sleep(pause)
    finally:
        workspace.on_message = None
    return columns


async def replies(
    slack: SlackEmulator, *, text: str, count: int, pause: float, timeout: float = 10.0
) -> JSON:
    """``count`` messages one after another, each once the bot has replied in
    its thread: from its ``app_mention`` envelope being sent to the reply
    being recorded (ms), and the last reply's text."""
    workspace = stamped(slack)
    latencies: list[float] = []
    reply = ""
    try:
        for _ in range(count):
            sample = Sample(workspace, starting="")
            workspace.on_message = sample.seen
            message = await slack.post("alice", "general", text)
            async with asyncio.timeout(timeout):
                replied_at, reply = await sample.result
            envelope = mention_envelope(slack, message)
            assert envelope.sent_at is not None
            latencies.append((replied_at - envelope.sent_at) * 1000)
            await slack.wait_for(lambda: all_acked(slack), timeout)
            await asyncio.sleep(pause)
    finally:
        workspace.on_message = None
    return {"latencies_ms": latencies, "reply": reply}


async def progress(
    slack: SlackEmulator, *, texts: list[str], finals: str, timeout: float
) -> JSON:
    """Post each of ``texts`` (jobs that run a while) at once, then wait until
    every progress message says how its run ended (contains ``finals``): the
    times of every ``chat.update`` (s) and how many final edits arrived."""
    for text in texts:
        await slack.post("alice", "general", text)

    def ended() -> list[Message]:
        return [
            m
            for m in slack.messages(CHANNEL)
            if m.user == slack.bot.id and finals in m.text
        ]

    with contextlib.suppress(TimeoutError):
        await slack.wait_for(lambda: len(ended()) >= len(texts) or None, timeout)
    updates = [c.at for c in slack.calls_to("chat.update") if c.ok]
    return {"updates": updates, "finals": len(ended())}


async def home(
    slack: SlackEmulator, *, count: int, pause: float, timeout: float = 10.0
) -> JSON:
    """Alice opens the Home tab ``count`` times, one at a time: from the
    ``app_home_opened`` envelope being sent to ``views.publish`` reaching
    the emulator (ms)."""
    latencies: list[float] = []
    for _ in range(count):
        published = len(slack.calls_to("views.publish"))
        envelope = await slack.open_home("alice")
        call = await slack.wait_for(
            lambda n=published: (slack.calls_to("views.publish")[n:] or [None])[0],
            timeout,
        )
        assert envelope.sent_at is not None and call.ok
        latencies.append((call.at - envelope.sent_at) * 1000)
        await slack.wait_for(lambda: all_acked(slack), timeout)
        await asyncio.sleep(pause)
    return {"latencies_ms": latencies}


def mention_envelope(slack: SlackEmulator, message: Message) -> Envelope:
    for envelope in reversed(slack.socket.envelopes.values()):
        event = envelope.event
        if event.get("type") == "app_mention" and event.get("ts") == message.ts:
            return envelope
    raise LookupError(f"no app_mention envelope for {message.ts}")


def reaction_at(slack: SlackEmulator, message: Message) -> float:
    """When the bot's ``reactions.add`` on ``message`` reached the emulator."""
    for call in reversed(slack.calls):
        if call.method == "reactions.add" and call.params.get("timestamp") == (
            message.ts
        ):
            return call.at
    raise LookupError(f"no reaction on {message.ts}")


SCENARIOS: dict[str, Callable[..., Awaitable[JSON]]] = {
    "connected": connected,
    "steady": steady,
    "burst": burst,
    "mentions": mentions,
    "replies": replies,
    "progress": progress,
    "home": home,
}
