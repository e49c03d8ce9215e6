"""The ``Notifier`` that posts to Slack with slack_sdk's ``AsyncWebClient``.

Rate limits, server errors and dropped connections are retried (see
``retry``). When a report still fails, it is logged and, unless Slack
could not be reached at all, a short notice goes where it should have gone.
Text too long for a Slack message goes up as a file instead (``send``, which
the Slack listeners use too).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from .. import messages, reports
from ..models import QueuedJob
from ..notifier import Posted, Report
from .directory import channel_id, looks_like_id
from .retry import BACKOFF, Count, SlackRetry, counted, retryable

log = structlog.get_logger("slack")

# Slack cuts a message's text past this many characters; longer text (and
# blocks whose JSON is longer) goes up as a file instead.
MAX_MESSAGE_CHARS = 40_000


def add_retries(
    client: AsyncWebClient, *, backoff: float = BACKOFF, count: Count | None = None
) -> AsyncWebClient:
    """Make ``SlackRetry`` the client's only retry handler (slack_sdk's default
    connection-error handler included), so every call has one budget;
    ``count`` records each retry (and, for a ``CountingWebClient``, each
    failed call) for the metrics."""
    client.retry_handlers = [SlackRetry(backoff=backoff, count=count)]
    if isinstance(client, CountingWebClient):
        client.count = count
    return client


class CountingWebClient(AsyncWebClient):
    """An ``AsyncWebClient`` that records each failed Web API call."""

    count: Count | None = None

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            return await super().api_call(api_method, **kwargs)
        except (SlackClientError, aiohttp.ClientError, TimeoutError):
            await counted(self.count, api_method, "error")
            raise


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to upload, with a short message (``comment``) saying what it is."""

    filename: str
    content: str
    comment: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Sent:
    """Where Slack put a post: its channel's id and its ts, or, for a file,
    the file's permalink (the file message's ts may not be known yet)."""

    channel: str
    ts: str = ""
    permalink: str = ""


def fits_in_message(text: str) -> bool:
    """Whether Slack shows ``text`` whole as a message's text."""
    return len(text) <= MAX_MESSAGE_CHARS


async def send(
    client: AsyncWebClient,
    channel: str,
    text: str,
    *,
    thread_ts: str = "",
    blocks: list[dict] | None = None,
    instead: Attachment,
    resolve: Callable[[str], Awaitable[str]] | None = None,
) -> Sent:
    """Post ``text`` in ``channel`` (in a thread if given); or ``blocks``, with
    ``text`` as their notification text. When that is too long for a message
    (the text, or the blocks' JSON), upload ``instead`` there as a file;
    ``resolve`` turns a channel name into the id an upload needs."""
    if fits_in_message(json.dumps(blocks) if blocks is not None else text):
        response = await client.chat_postMessage(  # slack_sdk drops None values
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts or None
        )
        return Sent(response["channel"], response["ts"])
    if resolve is not None:
        channel = await resolve(channel)
    return await upload(client, channel, instead, thread_ts=thread_ts)


async def upload(
    client: AsyncWebClient, channel: str, file: Attachment, *, thread_ts: str = ""
) -> Sent:
    """Upload ``file`` to ``channel`` (an id), in a thread if given."""
    response = await client.files_upload_v2(
        channel=channel,
        content=file.content,
        filename=file.filename,
        title=file.title or file.filename,
        initial_comment=file.comment,
        thread_ts=thread_ts or None,
    )
    found: dict[str, Any] = response.get("file") or {}
    return Sent(channel, permalink=found.get("permalink", ""))


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

    async def post(self, channel: str, text: str, thread_ts: str = "") -> bool:
        """Post ``text`` in ``channel`` (a name or an id), in a thread if given;
        False (logged) when Slack refused it or could not be reached."""
        sent = await self._post(
            channel_ref(channel), text, thread_ts=thread_ts, about="post"
        )
        return sent is not None

    async def notify_logs(self, text: str) -> None:
        await self._post(self._logs_channel, text, about="logs notice")

    async def report(self, job: QueuedJob, report: Report) -> None:
        channel, thread_ts = job.requester.channel, job.requester.thread_ts
        as_file = _report_file(job.type, report)
        try:
            match report.format:
                case "file":
                    await upload(
                        self._client,
                        await self._id(channel),
                        as_file,
                        thread_ts=thread_ts,
                    )
                case "blocks":
                    await send(
                        self._client,
                        channel,
                        messages.output_of(job.type),
                        thread_ts=thread_ts,
                        blocks=reports.slack_blocks(report.content),
                        instead=as_file,
                        resolve=self._id,
                    )
                case _:
                    await send(
                        self._client,
                        channel,
                        reports.slack_text(report),
                        thread_ts=thread_ts,
                        instead=as_file,
                        resolve=self._id,
                    )
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
        permalink = posted.permalink
        try:
            if not permalink:  # the message's channel is an id, even if named
                found = await self._client.chat_getPermalink(
                    channel=posted.channel, message_ts=posted.ts
                )
                permalink = found["permalink"]
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.error("permalink_failed", job_type=job.type, error=_describe(exc))
            return
        await self._post(
            self._tech_support_channel,
            messages.failure_repost(job.type, permalink),
            about="failure repost",
        )

    async def start_progress(self, job: QueuedJob, text: str) -> Posted | None:
        sent = await self._post(
            job.requester.channel,
            text,
            thread_ts=job.requester.thread_ts,
            about=f"progress of {job.type}",
        )
        return Posted(sent.channel, sent.ts) if sent is not None and sent.ts else None

    async def announce(self, channel: str, text: str) -> Posted | None:
        sent = await self._post(channel_ref(channel), text, about="announcement")
        return Posted(sent.channel, sent.ts) if sent is not None and sent.ts else None

    async def edit(self, posted: Posted, text: str) -> bool:
        try:
            await self._client.chat_update(
                channel=posted.channel, ts=posted.ts, text=text
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.error("edit_failed", channel=posted.channel, error=_describe(exc))
            return False
        return True

    async def _post(
        self, channel: str, text: str, *, thread_ts: str = "", about: str
    ) -> Sent | None:
        """Post ``text`` (as a file when too long); where it went, or None
        (logged) when it could not be posted."""
        try:
            return await send(
                self._client,
                channel,
                text,
                thread_ts=thread_ts,
                instead=Attachment(
                    "message.txt", text, messages.message_attached(len(text))
                ),
                resolve=self._id,
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.error("post_failed", about=about, channel=channel, error=_describe(exc))
            return None

    async def _fallback(self, job: QueuedJob, exc: Exception) -> None:
        error = _describe(exc)
        log.error("report_failed", job_id=job.id, job_type=job.type, error=error)
        if retryable(None, exc):
            return  # Slack could not be reached, however often retried
        await self._post(
            job.requester.channel,
            f"Command `{job.type}` finished, but I could not post its result "
            f"({error}).",
            thread_ts=job.requester.thread_ts,
            about=f"report fallback for {job.type}",
        )


def _report_file(job_type: str, report: Report) -> Attachment:
    """A report as a file: how ``file`` reports go, and others too long for a
    message (the job's output as it wrote it: a file needs no escaping)."""
    if report.format == "file":
        comment = messages.output_of(job_type)
    else:
        comment = messages.output_attached(job_type, len(report.content))
    extension = "json" if report.format == "blocks" else "txt"
    return Attachment(
        report.filename or f"{job_type}.{extension}",
        report.content,
        comment,
        title=f"Output of {job_type}",
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
