"""Socket Mode: the websocket that slack_sdk's SocketModeClient connects to.

`apps.connections.open` hands out `ws://…/link/?ticket=…`; a connection gets
`hello`, then `events_api` envelopes; the client acks each with
`{"envelope_id": …}`. Envelopes that find no open connection wait and go out,
in order, on the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from aiohttp import WSCloseCode, WSMsgType, web

from .state import JSON


@dataclass
class Ack:
    envelope_id: str
    received_at: float  # time.perf_counter()
    latency: float | None  # seconds from sending the envelope to this ack
    payload: JSON | None
    connection: int


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: JSON
    retry_attempt: int = 0
    retry_reason: str = ""
    accepts_response_payload: bool = False
    sent_at: float | None = None  # time.perf_counter(); None while waiting
    connection: int | None = None
    ack: Ack | None = None

    @property
    def event(self) -> JSON:
        return self.payload.get("event", {})

    def wire(self) -> JSON:
        return {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
            "retry_attempt": self.retry_attempt,
            "retry_reason": self.retry_reason,
        }


@dataclass(eq=False)
class Connection:
    id: int
    ws: web.WebSocketResponse = field(repr=False)
    transport: asyncio.BaseTransport | None = field(repr=False)
    opened_at: float
    closed_at: float | None = None
    ready: bool = False  # hello sent
    draining: bool = False  # told to disconnect: gets no new envelopes

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed


class SocketModeServer:
    def __init__(self, app_id: str, changed: Callable[[], None]) -> None:
        self.app_id = app_id
        self._changed = changed
        self._tickets: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._waiting: deque[Envelope] = deque()
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.acks: list[Ack] = []
        self.client_messages: list[str] = []  # anything else the client sent

    def issue_ticket(self) -> str:
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        return ticket

    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open]

    def _target(self) -> Connection | None:
        ready = [c for c in self.connections if c.open and c.ready and not c.draining]
        return ready[-1] if ready else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket", "") not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(next(self._ids), ws, request.transport, time.perf_counter())
        self.connections.append(conn)
        hello = {
            "type": "hello",
            "num_connections": len(self.open_connections()),
            "debug_info": {
                "host": f"applink-emulated-{conn.id}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        async with self._lock:
            if await self._send_raw(conn, hello):
                conn.ready = True
                await self._flush()
        self._changed()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
        finally:
            if conn.closed_at is None:
                conn.closed_at = time.perf_counter()
        self._changed()
        return ws

    async def _on_text(self, conn: Connection, data: str) -> None:
        now = time.perf_counter()
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict) or "envelope_id" not in message:
            self.client_messages.append(data)
            return
        envelope = self.envelopes.get(str(message["envelope_id"]))
        sent = envelope.sent_at if envelope is not None else None
        ack = Ack(
            envelope_id=str(message["envelope_id"]),
            received_at=now,
            latency=None if sent is None else now - sent,
            payload=message.get("payload"),
            connection=conn.id,
        )
        self.acks.append(ack)
        if envelope is not None and envelope.ack is None:
            envelope.ack = ack
        self._changed()

    async def _send_raw(self, conn: Connection, message: JSON) -> bool:
        try:
            await conn.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            if conn.closed_at is None:
                conn.closed_at = time.perf_counter()
            return False
        return True

    async def _send(self, conn: Connection, envelope: Envelope) -> bool:
        envelope.sent_at = time.perf_counter()
        envelope.connection = conn.id
        if await self._send_raw(conn, envelope.wire()):
            return True
        envelope.sent_at = envelope.connection = None
        return False

    async def _flush(self) -> None:
        """Send waiting envelopes, oldest first, while a connection takes them."""
        while self._waiting:
            conn = self._target()
            if conn is None:
                return
            # a failed send marks that connection closed; the loop moves on
            if await self._send(conn, self._waiting[0]):
                self._waiting.popleft()

    async def deliver(self, items: list[tuple[str, JSON]]) -> list[Envelope]:
        """Send (type, payload) pairs as envelopes, in order."""
        envelopes = [
            Envelope(envelope_id=str(uuid.uuid4()), type=kind, payload=payload)
            for kind, payload in items
        ]
        await self._enqueue(envelopes)
        return envelopes

    async def redeliver(
        self, envelope_id: str, reason: str = "timeout", *, elsewhere: bool = False
    ) -> Envelope:
        """Send the same payload again as Slack's retries do: a new envelope,
        the same `event_id`, `retry_attempt` one higher. With `elsewhere`, to
        another open connection than the one the original went to (Slack
        may pick any of an app's connections)."""
        original = self.envelopes[envelope_id]
        again = Envelope(
            envelope_id=str(uuid.uuid4()),
            type=original.type,
            payload=original.payload,
            retry_attempt=original.retry_attempt + 1,
            retry_reason=reason,
            accepts_response_payload=original.accepts_response_payload,
        )
        if not elsewhere:
            await self._enqueue([again])
            return again
        async with self._lock:
            others = [
                c
                for c in self.open_connections()
                if c.ready and not c.draining and c.id != original.connection
            ]
            if not others:
                raise ValueError("no other open connection to redeliver to")
            self.envelopes[again.envelope_id] = again
            if not await self._send(others[-1], again):
                raise ConnectionError("the other connection closed")
        self._changed()
        return again

    async def _enqueue(self, envelopes: list[Envelope]) -> None:
        async with self._lock:
            for envelope in envelopes:
                self.envelopes[envelope.envelope_id] = envelope
            self._waiting.extend(envelopes)
            await self._flush()
        self._changed()

    @property
    def waiting(self) -> list[Envelope]:
        return list(self._waiting)

    async def drop(self, *, graceful: bool = False) -> int:
        """Close every open connection: abruptly (TCP reset, no close frame)
        or, with `graceful`, with a close frame. Returns how many."""
        dropped = self.open_connections()
        for conn in dropped:
            conn.closed_at = time.perf_counter()
            if graceful or conn.transport is None:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped")
            else:
                cast(asyncio.Transport, conn.transport).abort()
        self._changed()
        return len(dropped)

    async def send_disconnect(self, reason: str = "refresh_requested") -> bool:
        """Ask the newest connection to reconnect, as Slack does before it
        retires a connection. It gets no new envelopes afterwards."""
        async with self._lock:
            conn = self._target()
            if conn is None:
                return False
            conn.draining = True
            message = {
                "type": "disconnect",
                "reason": reason,
                "debug_info": {"host": f"applink-emulated-{conn.id}"},
            }
            sent = await self._send_raw(conn, message)
        self._changed()
        return sent

    def close_all(self) -> None:
        for conn in self.open_connections():
            conn.closed_at = time.perf_counter()
            if conn.transport is not None:
                cast(asyncio.Transport, conn.transport).abort()
