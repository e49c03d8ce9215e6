"""``progress``: 50 jobs showing live progress at once, against Slack's rate
tier for ``chat.update`` (50 a minute, for all the bot's edits together).

50 jobs of distinct types, each ``sleep 75`` (with the service's pace: a
progress message after 10 s, edits at most every 10 s, one budget of 50
edits a minute), are asked for at once. The emulator records every
``chat.update``; the figures are the most edits in any minute, and how many
progress messages got their final edit ("… succeeded after …").

``--quick`` runs everything ten times faster: jobs of 7.5 s, a message after
1 s, edits every 1 s, a budget of 50 edits in any 6 s.
"""

from __future__ import annotations

from pathlib import Path

from bennettbot.progress import EditBudget, Pace

from .common import Line, at_least, at_most
from .slackrig import running_bot

JOBS = 50
SECONDS, QUICK = 75.0, 0.1  # a job's length; the quick run's time scale


def jobs_toml(seconds: float) -> str:
    parts = ['[prog]\ndescription = "Long jobs"\n']
    for n in range(JOBS):
        parts.append(
            f'[prog.jobs.j{n}]\nrun_args_template = "sleep {seconds:g}"\n'
            f'[[prog.slack]]\ncommand = "j{n}"\naction = "schedule_job"\n'
            f'job_type = "j{n}"\n'
        )
    return "\n".join(parts)


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


async def run(root: Path, quick: bool) -> list[Line]:
    scale = QUICK if quick else 1.0
    seconds, window = SECONDS * scale, 60.0 * scale
    async with running_bot(root, jobs_toml(seconds)) as rig:
        rig.engine.dispatcher.kit.pace = Pace(
            after=10 * scale, every=10 * scale, budget=EditBudget(50, window=window)
        )
        result = await rig.host.run(
            "progress",
            texts=[f"<@U0BOT> prog j{n}" for n in range(JOBS)],
            finals="succeeded after",
            timeout=seconds + 3 * window,
        )
    updates, finals = result["updates"], result["finals"]
    most = most_in_any_window(updates, window)
    span = (max(updates) - min(updates)) if updates else 0.0
    notes = [
        f"{len(updates)} edits in all over {span:.1f} s; {JOBS} jobs of "
        f"{seconds:g} s each, asked for at once",
        rig.arrangement,
    ]
    if quick:
        notes.append("quick run: every time ÷ 10 (a 6 s window for the rate)")
    return [
        Line(
            "progress",
            f"{JOBS} runs with live progress: at most {most} chat.update in any "
            f"{window:g} s; final edits {finals}/{JOBS}",
            (
                at_most("in any window", most, 50, "edits"),
                at_least("final edits", finals, JOBS, f"of {JOBS}"),
            ),
            tuple(notes),
        )
    ]
