"""``rota report``: who is on duty this week and next, from a Google Sheet.

    python -m jobkit.rota --title TITLE --sheet SHEET_ID --range RANGE
                          [--out-of-office] [--today YYYY-MM-DD]

The range's first row names the columns; the first column holds a date in the
week each row is for (a date cell, or text such as 2026-11-23 or 23/11/2026),
and each further column is a role, with the person on duty in it. With
``--out-of-office`` the report also says when tech-support is out of office
(``techsupport ooo``), read from the bot's database at ``DB_PATH``. Reads the
service account key named by ``GCP_CREDENTIALS_PATH``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from jobkit import blocks
from jobkit.google import ServiceAccount, sheet_values
from jobkit.script import JobError, http_session, run

SERIAL_EPOCH = date(1899, 12, 30)  # day 0 of Google Sheets' date serial numbers
TEXT_DATES = ("%Y-%m-%d", "%d/%m/%Y", "%d %b %Y", "%d %B %Y")


@dataclass(frozen=True)
class Rota:
    roles: tuple[str, ...]
    weeks: dict[date, tuple[str, ...]]  # Monday → one person (or "") per role


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_rota(rows: Sequence[Sequence[object]]) -> Rota:
    """Rows of the sheet (a header row, then one row per week) as a ``Rota``."""
    if not rows:
        raise JobError("the rota range is empty")
    roles = tuple(str(cell).strip() for cell in rows[0][1:])
    if not roles:
        raise JobError("the rota's first row should name a date column then roles")
    weeks: dict[date, tuple[str, ...]] = {}
    for row in rows[1:]:
        day = _date(row[0]) if row else None
        if day is None:
            continue  # blank or notes rows
        people = [str(cell).strip() for cell in row[1 : len(roles) + 1]]
        people += [""] * (len(roles) - len(people))
        weeks[monday_of(day)] = tuple(people)
    return Rota(roles, weeks)


def duty_week(today: date) -> date:
    """The Monday of the work week that ``today`` is in, or of the coming one
    at a weekend."""
    return monday_of(today + timedelta(days=2 if today.weekday() >= 5 else 0))


def day(moment: date, *, year: bool = False) -> str:
    """``Mon 7 Dec`` (``Mon 7 Dec 2026`` with ``year``)."""
    text = f"{moment:%a} {moment.day} {moment:%b}"
    return f"{text} {moment.year}" if year else text


def week_text(rota: Rota, monday: date, which: str) -> str:
    friday = monday + timedelta(days=4)
    title = f"*{which}* ({day(monday)} – {day(friday)})"
    people = rota.weeks.get(monday)
    if people is None or not any(people):
        return f"{title}\n_No one is on the rota._"
    if len(rota.roles) == 1:
        return blocks.listing(title, [blocks.escape(people[0])])
    lines = [
        f"{blocks.escape(role or 'On duty')}: {blocks.escape(person or 'nobody')}"
        for role, person in zip(rota.roles, people, strict=True)
    ]
    return blocks.listing(title, lines)


def out_of_office_text(period: tuple[date, date] | None, today: date) -> str | None:
    if period is None or period[1] < today:
        return None
    start, end = period
    if start <= today:
        return f":palm_tree: Tech-support is out of office until {day(end, year=True)}."
    return (
        ":palm_tree: Tech-support will be out of office from "
        f"{day(start, year=True)} to {day(end, year=True)}."
    )


def rota_blocks(
    title: str,
    sheet_id: str,
    rota: Rota,
    today: date,
    out_of_office: tuple[date, date] | None = None,
) -> list[dict]:
    this_monday = duty_week(today)
    result = [
        blocks.header(title),
        blocks.section(week_text(rota, this_monday, "This week")),
        blocks.section(week_text(rota, this_monday + timedelta(days=7), "Next week")),
    ]
    if note := out_of_office_text(out_of_office, today):
        result.append(blocks.section(note))
    url = f"https://docs.google.com/spreadsheets/d/{sheet_id}"
    result.append(blocks.context(blocks.link(url, "Open the rota spreadsheet")))
    return result


def read_out_of_office(db_path: str | None) -> tuple[date, date] | None:
    """The out-of-office period stored by the bot, read-only; None when unknown."""
    if not db_path:
        print("warning: DB_PATH is not set; out of office not checked", file=sys.stderr)
        return None
    try:
        with closing(sqlite3.connect(f"file:{quote(db_path)}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT start_date, end_date FROM tech_support_ooo WHERE id = 1"
            ).fetchone()
    except sqlite3.Error as error:
        print(f"warning: out of office not checked ({error})", file=sys.stderr)
        return None
    if row is None:
        return None
    return date.fromisoformat(row[0]), date.fromisoformat(row[1])


async def report(
    title: str,
    sheet_id: str,
    cell_range: str,
    today: date,
    *,
    out_of_office: bool = False,
) -> str:
    if sheet_id.startswith("REPLACE-WITH"):
        raise JobError(
            "this rota's spreadsheet is not set: put its id in the job's --sheet= "
            "in the job config"
        )
    account = ServiceAccount.from_env()
    async with http_session() as session:
        rows = await sheet_values(session, account, sheet_id, cell_range)
    period = read_out_of_office(os.environ.get("DB_PATH")) if out_of_office else None
    return blocks.dumps(rota_blocks(title, sheet_id, parse_rota(rows), today, period))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--title", required=True, help="the report's heading")
    parser.add_argument("--sheet", required=True, help="the spreadsheet's id")
    parser.add_argument("--range", required=True, help="e.g. 'Rota 2026' or A1:C60")
    parser.add_argument("--out-of-office", action="store_true")
    parser.add_argument("--today", type=date.fromisoformat, help="default: today (UTC)")
    args = parser.parse_args(argv)
    today = args.today or datetime.now(UTC).date()
    return run(
        lambda: report(
            args.title, args.sheet, args.range, today, out_of_office=args.out_of_office
        )
    )


def _date(cell: object) -> date | None:
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int | float):
        valid = 0 < cell < 2_958_466  # up to 9999-12-31
        return SERIAL_EPOCH + timedelta(days=int(cell)) if valid else None
    text = str(cell).strip()
    for pattern in TEXT_DATES:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


if __name__ == "__main__":
    raise SystemExit(main())
