"""Socket Mode that acks Events API envelopes as soon as they are read.

slack-bolt's handler runs the whole middleware chain for an envelope before
acking it, and slack_sdk starts one task per envelope, so in a burst every
ack waits for the whole burst's dispatch (a burst of 500 mentions measured
180 to 340 ms p99; see bench/README.md). Events API acks carry no payload, so
this handler acks them at once and feeds bolt from a queue, one envelope per
loop turn. Other envelope types (slash commands, interactivity) keep bolt's
own ack, which may carry a response payload.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

log = structlog.get_logger("slack")


class QuickAckSocketModeHandler(AsyncSocketModeHandler):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pending: asyncio.Queue[SocketModeRequest] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None

    # bolt's own handler narrows the client type the same way (and says so)
    async def handle(  # type: ignore[override]
        self, client: SocketModeClient, req: SocketModeRequest
    ) -> None:
        if req.type != "events_api":
            await super().handle(client, req)
            return
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id)
        )
        self._pending.put_nowait(req)

    async def _dispatch(self) -> None:
        while True:
            req = await self._pending.get()
            try:
                await run_async_bolt_app(self.app, req)
            except Exception:  # bolt's own error handler has run; keep going
                log.exception("dispatch_failed", envelope_id=req.envelope_id)
            await asyncio.sleep(0)  # let the socket be read between envelopes

    async def connect_async(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="bolt")
        await super().connect_async()

    async def close_async(self) -> None:
        await super().close_async()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
