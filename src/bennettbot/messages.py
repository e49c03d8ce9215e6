"""The texts the bot says about jobs. Pure functions, no I/O."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .jobconfig import Namespace
from .models import (
    Confirmation,
    JobCancelled,
    JobQueued,
    JobRemoved,
    Outcome,
    QueueAnswer,
    QueueStatus,
    Requester,
    RunRecord,
    RunResult,
    ScheduleResult,
    StopAsked,
    Suppression,
    SuppressionsCancelled,
)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def starting(job_type: str) -> str:
    return f"Command `{job_type}` about to start"


def succeeded(job_type: str) -> str:
    return f"Command `{job_type}` succeeded"


NO_OUTPUT = "No output found"


MAX_LAST_WORDS = 300


def failed(
    job_type: str,
    result: RunResult,
    host_log_dir: str,
    log_dir: str,
    bot_name: str,
    *,
    last_words: str = "",
) -> str:
    """The failure report: what happened (with the last line the job wrote to
    stderr, which a job can use to explain itself), where the logs are, and
    how to read them."""
    if result.outcome is Outcome.TIMED_OUT:
        what = result.message or "timed out"
    elif result.outcome is Outcome.FAILED:
        what = f"failed with exit status {result.exit_status}"
    elif result.outcome is Outcome.INTERRUPTED:
        what = "was interrupted: the bot stopped while it was running"
    else:
        what = f"could not run: {result.message}" if result.message else "failed"
    mention = f"@{bot_name} " if bot_name else ""
    lines = [f"Command `{job_type}` {what}."]
    if last_words:
        if len(last_words) > MAX_LAST_WORDS:
            last_words = last_words[: MAX_LAST_WORDS - 1] + "…"
        lines.append("> " + escape(last_words))
    if log_dir:
        lines += [
            f"Logs are in `{host_log_dir.rstrip('/')}/{log_dir}` on the bot's host.",
            "Read them here with:",
            f"`{mention}showlogs tail stdout {log_dir}`",
            f"`{mention}showlogs tail stderr {log_dir}`",
        ]
    return "\n".join(lines)


def escape(text: str) -> str:
    """``text`` shown literally by Slack: no mentions, links or channel names."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack's markup that notifies people: <!channel>, <!here>, <!everyone> (and
# the old <!group>), user groups <!subteam^ID>, users <@U…>; each may carry a
# label after `|`.
_PING = re.compile(
    r"<((?:!(?:channel|here|everyone|group)|!subteam\^[^|<>]*|@[^|<>]+)"
    r"(?:\|[^<>]*)?)>",
    re.IGNORECASE,
)


def no_pings(text: str) -> str:
    """``text`` with its mentions (``<!channel>``, ``<!here>``, ``<@U123>``,
    ``<!subteam^S1|@team>``…) shown literally instead of notifying anyone;
    links, channel links and everything else are left as they are."""
    while (inert := _PING.sub(r"&lt;\1&gt;", text)) != text:
        text = inert  # again: `<@U1|<!here>>` holds a mention once `<!here>` goes
    return text


def output_of(job_type: str) -> str:
    return f"Output of `{job_type}`"


def output_attached(job_type: str, length: int) -> str:
    return (
        f"The output of `{job_type}` is {length:,} characters long, so it is "
        "attached as a file."
    )


def message_attached(length: int) -> str:
    return (
        f"This message is {length:,} characters long, too long for Slack, so it "
        "is attached as a file."
    )


def interrupted(job_type: str) -> str:
    return (
        f"Command `{job_type}` was interrupted: the bot stopped while it was "
        "running. Ask again to run it."
    )


def fabfile_failed(namespace: str, reason: str) -> str:
    return (
        f"Could not fetch the fabfile of `{namespace}` ({reason}); "
        "running the job with the last copy."
    )


def bad_blocks(job_type: str, problem: str) -> str:
    return (
        f"Command `{job_type}` succeeded, but its output is not valid Slack "
        f"blocks ({problem})."
    )


def already_running(
    job_type: str, running_id: int, waiting_id: int, bot_name: str
) -> str:
    mention = f"@{bot_name} " if bot_name else ""
    return (
        f"A `{job_type}` job (id {running_id}) is already running, so this one "
        f"(id {waiting_id}) will start when it has finished. "
        f"See `{mention}status`; `{mention}remove job id {waiting_id}` takes "
        f"this one off the queue, `{mention}stop job id {running_id}` stops the "
        "running one."
    )


def suppressed(job_type: str, until: datetime) -> str:
    return f"`{job_type}` jobs are suppressed until {when(until)}; it will wait."


def job_cancelled(job_type: str, found: bool) -> str:
    if found:
        return f"Cancelled the waiting `{job_type}` job."
    return f"No `{job_type}` job was waiting."


def suppression_scheduled(job_type: str, start: datetime, end: datetime) -> str:
    return f"`{job_type}` jobs are suppressed from {when(start)} to {when(end)}."


def suppressions_cancelled(job_type: str, count: int) -> str:
    if not count:
        return f"No suppression of `{job_type}` jobs was scheduled."
    return f"Cancelled {count} suppression(s) of `{job_type}` jobs."


BAD_TIMES = (
    "Sorry, I could not read those times: give them as HH:MM (24-hour, UTC, "
    "today), the start before the end."
)
NOTHING_HAPPENING = "Nothing is happening"


def window_over(end: datetime) -> str:
    return (
        f"That window ended at {when(end)}: suppressions are for later today "
        "(times are UTC)."
    )


def job_removed(removed: JobRemoved, bot_name: str) -> str:
    job_id, job_type = removed.job_id, removed.job_type
    if job_type is None:
        return f"There is no job with id {job_id}."
    if removed.running:
        mention = f"@{bot_name} " if bot_name else ""
        return (
            f"Job {job_id} (`{job_type}`) is running, so it stays: "
            f"`{mention}stop job id {job_id}` stops it."
        )
    return f"Removed job {job_id} (`{job_type}`) from the queue."


def stop_asked(asked: StopAsked, bot_name: str) -> str:
    job_id, job_type = asked.job_id, asked.job_type
    mention = f"@{bot_name} " if bot_name else ""
    if job_type is None:
        return (
            f"There is no job with id {job_id}. `{mention}status` lists the "
            "jobs with their ids."
        )
    if not asked.running:
        return (
            f"Job {job_id} (`{job_type}`) has not started, so there is nothing "
            f"to stop: `{mention}remove job id {job_id}` takes it off the queue."
        )
    return f"Stopping job {job_id} (`{job_type}`); its thread will be told."


def stopped(job_id: int, job_type: str, by: str, seconds: float) -> str:
    who = f"<@{by}>" if by else "someone"
    return (
        f"Job {job_id} (`{job_type}`) was stopped by {who} after {duration(seconds)}."
    )


def duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min 5 s``, ``2 h 7 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def queue_answer(answer: QueueAnswer, bot_name: str) -> str:
    """What the requester is told ("" when the ✅ reaction says it all)."""
    match answer:
        case JobQueued(job_type, result):
            if result.running_job_id is not None:
                return already_running(
                    job_type, result.running_job_id, result.job_id, bot_name
                )
            if result.suppressed_until is not None:
                return suppressed(job_type, result.suppressed_until)
            return ""
        case JobCancelled(job_type, found):
            return job_cancelled(job_type, found)
        case Suppression(_, job_type, start, end):
            return suppression_scheduled(job_type, start, end)
        case SuppressionsCancelled(job_type, count):
            return suppressions_cancelled(job_type, count)


def status(queue: QueueStatus, args_hidden_for: Collection[str] = ()) -> str:
    """Running and waiting jobs, then suppressions, one per line. Jobs of the
    namespaces in ``args_hidden_for`` (restricted ones, for a guest) are
    shown by type only."""
    lines = []
    for job in queue.jobs:
        shown = {} if job.namespace in args_hidden_for else job.args
        args = " ".join(  # typed by people: shown literally
            f"{k}={escape(v)}" for k, v in sorted(shown.items())
        )
        args = f" ({args})" if args else ""
        if job.started_at is not None:
            lines.append(
                f"[{job.id}] {job.type}{args} running since {when(job.started_at)}"
            )
        else:
            lines.append(
                f"[{job.id}] {job.type}{args} waiting to start at "
                f"{when(job.start_after)}"
            )
    for plan in queue.schedules:
        lines.append(
            f"[schedule] `{plan.command}` next at "
            f"{local_time(plan.next_at, plan.timezone)}"
        )
    for s in queue.suppressions:
        state = "active" if s.start_at <= queue.now else "scheduled"
        lines.append(
            f"[suppression {s.id}] {s.job_type} suppressed ({state}) from "
            f"{when(s.start_at)} to {when(s.end_at)}"
        )
    return "\n".join(lines) or NOTHING_HAPPENING


def general_help(namespaces: Mapping[str, Namespace], bot_name: str) -> str:
    mention = f"@{bot_name} " if bot_name else ""
    lines = ["I know these namespaces:"]
    for namespace in namespaces.values():
        mark = " (restricted to team members)" if namespace.restricted else ""
        about = f": {no_pings(namespace.description)}" if namespace.description else ""
        lines.append(f"• `{namespace.name}`{mark}{about}")
    lines += [
        f"For a namespace's commands: `{mention}NAMESPACE help`.",
        f"Also: `{mention}status`, `{mention}history [NAMESPACE|TYPE]`, "
        f"`{mention}stop job id N`, `{mention}remove job id N`, "
        f"`{mention}showlogs head|tail|all stdout|stderr RUN`.",
    ]
    return "\n".join(lines)


# Commands the bot itself answers, listed in the help of their namespace.
BUILT_IN_HELP = {
    "techsupport": (
        (
            "ooo on from [start] to [end]",
            "tech-support is out of office from [start] to [end] (YYYY-MM-DD)",
        ),
        ("ooo off", "tech-support is back"),
        ("ooo status", "say whether tech-support is out of office"),
    ),
}


def namespace_help(namespace: Namespace, bot_name: str) -> str:
    mention = f"@{bot_name} " if bot_name else ""
    lines = [f"Commands in `{namespace.name}`:"]
    commands = [(c.command, c.help) for c in namespace.slack]
    for command, about in [*commands, *BUILT_IN_HELP.get(namespace.name, ())]:
        about = f": {no_pings(about)}" if about else ""
        lines.append(f"• `{mention}{namespace.name} {no_pings(command)}`{about}")
    return "\n".join(lines)


def apology(namespaces: Mapping[str, Namespace], bot_name: str) -> str:
    return "Sorry, I didn't understand that.\n" + general_help(namespaces, bot_name)


def restricted(namespace: str) -> str:
    return (
        f"Sorry, the `{namespace}` commands are only for members of the team; "
        "please ask one of them to run it for you."
    )


OOO_BAD_DATES = (
    "Sorry, give the dates as YYYY-MM-DD, e.g. "
    "`techsupport ooo on from 2026-12-01 to 2026-12-05`."
)
OOO_BAD_PERIOD = (
    "The out-of-office period must start on or before its end, and must not be "
    "over already."
)
OOO_OFF = "Tech-support is back in the office."
IN_OFFICE = "Tech-support is in the office."


def ooo_set(start: date, end: date) -> str:
    return f"Tech-support is out of office from {start} until {end}."


def ooo_status(period: tuple[date, date] | None, today: date) -> str:
    if period is None or period[1] < today:
        return IN_OFFICE
    start, end = period
    if start > today:
        return f"Tech-support will be out of office from {start} until {end}."
    return f"Tech-support is out of office until {end}."


SUPPORT_FROM_DM = (
    "Sorry, I can't call tech-support from this conversation: ask in a channel "
    "and mention tech-support there."
)


def support_repost(permalink: str) -> str:
    return f"Tech-support request: {permalink}"


def failure_repost(job_type: str, permalink: str) -> str:
    return f"Command `{job_type}` failed: {permalink}"


def out_of_office_reply(end: date) -> str:
    return (
        f"Tech-support is out of office until {end}; your request has been "
        "passed on and will be seen when they are back."
    )


def listener_failed(error: Exception) -> str:
    return (
        "Sorry, something went wrong while I was handling this message "
        f"({type(error).__name__}); the error has been logged."
    )


def deploy_scheduled(
    project: str, number: int, title: str, merged_by: str, at: datetime
) -> str:
    return (
        f"PR #{number} “{escape(title)}” was merged by {escape(merged_by)}: "
        f"`{project}_deploy` will start at {when(at)}."
    )


def deploy_suppressed(project: str, until: datetime, cancel_command: str) -> str:
    how = (
        f" To deploy sooner, cancel the suppression with {cancel_command}."
        if cancel_command
        else ""
    )
    return (
        f"A PR was merged, but deploys of `{project}` are suppressed until "
        f"{when(until)}; the deploy will wait until then.{how}"
    )


def showlogs_usage(bot_name: str) -> str:
    mention = f"@{bot_name} " if bot_name else ""
    return (
        f"Usage: `{mention}showlogs head|tail|all stdout|stderr RUN`, where RUN "
        "is a run id or the log folder that a failure report gives (e.g. "
        "`test_hello/20261130-120000`). `output` and `error` work too."
    )


MEMBERS_ONLY_LOGS = (
    "Sorry, job logs are only for members of the team; please ask one of them."
)


def log_excerpt(where: str, part: str, text: str) -> str:
    what = {"head": "first", "tail": "last"}[part]
    if not text.strip():
        return f"`{where}` is empty."
    return f"The {what} lines of `{where}`:\n```\n{text.rstrip()}\n```"


def log_file_note(where: str, truncated: bool, limit: int) -> str:
    cut = (
        f" (its first {limit >> 20} MiB; the rest is on the bot's host)"
        if truncated
        else ""
    )
    return f"`{where}`{cut}"


def unknown_run(run_id: int) -> str:
    return f"There is no run with id {run_id}."


OUTCOME_WORDS = {
    Outcome.RUNNING: "running",
    Outcome.SUCCEEDED: "succeeded",
    Outcome.FAILED: "failed",
    Outcome.TIMED_OUT: "timed out",
    Outcome.ERROR: "could not run",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.STOPPED: "stopped",
    Outcome.CANCELLED: "cancelled",
}


def history(
    runs: Sequence[RunRecord],
    of: str | None,
    now: datetime,
    *,
    names: Mapping[str, str],
    workspace_url: str = "",
    bot_name: str = "",
) -> str:
    """``history``: one line per run, newest first, then how to read logs.
    Names are shown as text (a history pings no one)."""
    which = f" of `{escape(of)}`" if of else ""
    if not runs:
        return f"No runs{which} yet."
    count = "run" if len(runs) == 1 else f"{len(runs)} runs"
    lines = [f"The last {count}{which}, newest first:"]
    for run in runs:
        took = (run.ended_at or now) - run.started_at
        took_text = duration(took.total_seconds())
        took_text = f"for {took_text}" if run.ended_at is None else f"took {took_text}"
        user = run.requester.user
        asker = f"@{names.get(user, user)}" if user else "a webhook"
        line = (
            f"• {run.id} `{run.type}` {OUTCOME_WORDS[run.outcome]}, "
            f"started {when(run.started_at)}, {took_text}, asked by {escape(asker)}"
        )
        if link := thread_link(workspace_url, run.requester):
            line += f" (<{link}|thread>)"
        lines.append(line)
    mention = f"@{bot_name} " if bot_name else ""
    lines.append(f"Logs by run id: `{mention}showlogs tail stdout {runs[0].id}`.")
    return "\n".join(lines)


def thread_link(workspace_url: str, where: Requester) -> str:
    """A link to the message that asked (Slack's archive URL), or ""."""
    if not (workspace_url and where.channel and where.thread_ts):
        return ""
    base = workspace_url if workspace_url.endswith("/") else f"{workspace_url}/"
    return f"{base}archives/{where.channel}/p{where.thread_ts.replace('.', '')}"


def running_for(job_type: str, seconds: float) -> str:
    return f"⏳ `{job_type}` has been running for {duration(seconds)}."


def run_ended(job_type: str, outcome: Outcome, seconds: float) -> str:
    mark = "✅" if outcome is Outcome.SUCCEEDED else "⏹"
    return f"{mark} `{job_type}` {OUTCOME_WORDS[outcome]} after {duration(seconds)}."


def local_time(moment: datetime, timezone: str) -> str:
    """``Mon 2026-12-07 09:00 Europe/London`` (``moment`` is aware)."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %Y-%m-%d %H:%M} {timezone}"


def scheduled(command: str, due: datetime, timezone: str, late: bool) -> str:
    text = f"⏰ Scheduled: `{command}`, due {local_time(due, timezone)}"
    if late:
        return f"{text}. Late: the bot was not running then, so it runs now."
    return f"{text}."


def _job_with_args(job_type: str, args: Mapping[str, str]) -> str:
    shown = " ".join(f"{k}={escape(v)}" for k, v in sorted(args.items()))
    return f"`{job_type}`" + (f" ({shown})" if shown else "")


def confirm_question(job_type: str, args: Mapping[str, str]) -> str:
    return (
        f"Run {_job_with_args(job_type, args)}? It asks for a second look: "
        "press Run to queue it, or Cancel. The question expires in 10 minutes."
    )


def confirmed(
    confirmation: Confirmation, by: str, result: ScheduleResult, bot_name: str
) -> str:
    text = (
        f"✅ {_job_with_args(confirmation.job_type, confirmation.args)}: "
        f"confirmed by <@{by}>, queued as job {result.job_id}."
    )
    answer = queue_answer(JobQueued(confirmation.job_type, result), bot_name)
    return f"{text} {answer}" if answer else text


def confirm_cancelled(confirmation: Confirmation, by: str) -> str:
    job = _job_with_args(confirmation.job_type, confirmation.args)
    return f"✖️ {job}: cancelled by <@{by}>; nothing was queued."


def confirm_failed(confirmation: Confirmation, by: str, problem: str) -> str:
    job = _job_with_args(confirmation.job_type, confirmation.args)
    return f"{job}: confirmed by <@{by}>, but it could not be queued: {problem}"


def confirm_expired(confirmation: Confirmation) -> str:
    job = _job_with_args(confirmation.job_type, confirmation.args)
    return f"⌛ {job}: nobody confirmed it within 10 minutes, so nothing was queued."


CONFIRMATION_GONE = "Sorry, I have no record of that question."
CONFIRMATION_EXPIRED = "Too late: that question has expired. Ask for the job again."


def confirmation_decided(confirmation: Confirmation | None) -> str:
    if confirmation is None:
        return CONFIRMATION_GONE
    if confirmation.state == "expired":
        return CONFIRMATION_EXPIRED
    return f"That was {confirmation.state} already by <@{confirmation.decided_by}>."
