"""The ``Notifier`` that posts to Slack with slack_sdk's ``AsyncWebClient``.

Rate limits and transient errors are retried by slack_sdk's async retry
handlers (``Retry-After`` honoured). When a post still fails, a short notice
goes where the post should have gone and the failure is logged.
"""

from __future__ import annotations

import json

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from . import messages
from .models import QueuedJob
from .notifier import Report
from .slack_lookup import channel_id, looks_like_id

log = structlog.get_logger("slack")


def add_retries(client: AsyncWebClient) -> AsyncWebClient:
    """Retry rate-limited (429) and failed (5xx) calls; connection errors are
    already retried by slack_sdk's default handler."""
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    return client


class SlackNotifier:
    def __init__(
        self, client: AsyncWebClient, logs_channel: str, tech_support_channel: str
    ) -> None:
        self._client = client
        self._logs_channel = channel_ref(logs_channel)
        self._tech_support_channel = channel_ref(tech_support_channel)
        self._ids: dict[str, str] = {}  # channel name → id

    async def _id(self, channel: str) -> str:
        """An id for ``channel`` (file uploads and permalinks need ids)."""
        if looks_like_id(channel):
            return channel
        if channel not in self._ids:
            self._ids[channel] = await channel_id(self._client, channel)
        return self._ids[channel]

    async def post(self, channel: str, text: str, thread_ts: str = "") -> None:
        """Post ``text`` in ``channel`` (a name or an id), in a thread if given."""
        await self._post(channel_ref(channel), text, thread_ts=thread_ts, about="post")

    async def notify_logs(self, text: str) -> None:
        await self._post(self._logs_channel, text, about="logs notice")

    async def report(self, job: QueuedJob, report: Report) -> None:
        where = {"channel": job.requester.channel}
        if job.requester.thread_ts:
            where["thread_ts"] = job.requester.thread_ts
        try:
            match report.format:
                case "file":
                    await self._client.files_upload_v2(
                        **(where | {"channel": await self._id(where["channel"])}),
                        content=report.content,
                        filename=report.filename or f"{job.type}.txt",
                        title=f"Output of {job.type}",
                    )
                case "blocks":
                    await self._client.chat_postMessage(
                        **where,
                        blocks=json.loads(report.content),
                        text=f"Output of `{job.type}`",
                    )
                case "code":
                    await self._client.chat_postMessage(
                        **where, text=f"```\n{report.content.rstrip()}\n```"
                    )
                case _:
                    await self._client.chat_postMessage(**where, text=report.content)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            await self._fallback(job, exc)

    async def report_failure(self, job: QueuedJob, text: str) -> None:
        posted = await self._post(
            job.requester.channel,
            text,
            thread_ts=job.requester.thread_ts,
            about=f"failure of {job.type}",
        )
        if posted is None or job.requester.is_im or not self._tech_support_channel:
            return
        channel, ts = posted  # the channel's id, even when asked by name
        try:
            found = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.error("permalink_failed", job_type=job.type, error=_describe(exc))
            return
        await self._post(
            self._tech_support_channel,
            messages.failure_repost(job.type, found["permalink"]),
            about="failure repost",
        )

    async def _post(
        self, channel: str, text: str, *, thread_ts: str = "", about: str
    ) -> tuple[str, str] | None:
        """Post ``text``; the message's channel id and ts, or None (logged)."""
        try:
            response = await self._client.chat_postMessage(
                channel=channel,
                text=text,
                **({"thread_ts": thread_ts} if thread_ts else {}),
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.error("post_failed", about=about, channel=channel, error=_describe(exc))
            return None
        return response["channel"], response["ts"]

    async def _fallback(self, job: QueuedJob, exc: Exception) -> None:
        error = _describe(exc)
        log.error("report_failed", job_id=job.id, job_type=job.type, error=error)
        await self._post(
            job.requester.channel,
            f"Command `{job.type}` finished, but I could not post its result "
            f"({error}).",
            thread_ts=job.requester.thread_ts,
            about=f"report fallback for {job.type}",
        )


def channel_ref(name_or_id: str) -> str:
    """``logs`` → ``#logs``; ``#logs`` and ids (``C0123ABC``) stay as they are."""
    if not name_or_id or name_or_id.startswith("#") or looks_like_id(name_or_id):
        return name_or_id
    return f"#{name_or_id}"


def _describe(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "error"))
    return type(exc).__name__
