"""``report board``: the items of a GitHub project board, by status, as Slack blocks.

    python -m jobkit.board --org ORG PROJECT_NUMBER [STATUSES]

STATUSES is a comma-separated list of the board's status names; case, spaces
and punctuation are ignored, so ``todo,inprogress`` picks "Todo" and "In
Progress". Without it every status that has items is shown, in the board's
order, then the items with no status. Reads ``DATA_TEAM_GITHUB_API_TOKEN``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from jobkit import blocks
from jobkit.github import API_URL, Board, Item, fetch_board, token_from_env
from jobkit.script import JobError, http_session, run

NO_STATUS = "No status"


MAX_NUMBER = 2**31 - 1  # GraphQL's Int


def parse_number(text: str) -> int:
    if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_NUMBER:
        return int(text)
    raise JobError(f"the project number should be a whole number like 12, not {text!r}")


def choose_statuses(board: Board, wanted: str | None) -> list[str] | None:
    """The board's statuses named in ``wanted`` (None: no filter)."""
    if not wanted:
        return None
    known = {_key(NO_STATUS): NO_STATUS}  # the items with no status
    known |= {_key(status): status for status in board.statuses}
    chosen, unknown = [], []
    for name in filter(None, (part.strip() for part in wanted.split(","))):
        status = known.get(_key(name))
        if status is None:
            unknown.append(name)
        elif status not in chosen:
            chosen.append(status)
    if unknown or not chosen:
        listed = ", ".join(board.statuses) or "none"
        missing = ", ".join(repr(name) for name in unknown) or repr(wanted)
        raise JobError(f"the board has no status {missing}; its statuses are: {listed}")
    return chosen


def board_blocks(board: Board, statuses: Sequence[str] | None = None) -> list[dict]:
    """A header, a link to the board, then one section per status."""
    groups: dict[str, list[Item]] = {}
    for item in board.items:
        groups.setdefault(item.status or NO_STATUS, []).append(item)
    if statuses is None:
        order = [s for s in board.statuses if s in groups]
        order += [s for s in groups if s not in order and s != NO_STATUS]
        order += [NO_STATUS] if NO_STATUS in groups else []
    else:
        order = list(statuses)
    total = len(board.items)
    count = f"{total} item{'' if total == 1 else 's'}"
    if statuses is not None:
        shown = sum(len(groups.get(status, ())) for status in statuses)
        count = f"{shown} of {count}"
    result = [
        blocks.header(board.title),
        blocks.context(f"{blocks.link(board.url, 'Open the board')} · {count}"),
    ]
    if not board.items:
        result.append(blocks.section("_The board has no items._"))
    for status in order:
        items = groups.get(status, [])
        title = f"*{blocks.escape(status)}* ({len(items)})"
        if not items:
            result.append(blocks.section(f"{title}\n_Nothing here._"))
            continue
        result.append(blocks.section(blocks.listing(title, [_line(i) for i in items])))
    return blocks.capped(result, noun="statuses")


async def report(
    org: str,
    number: str,
    statuses: str | None = None,
    *,
    status_field: str = "Status",
    url: str = API_URL,
) -> str:
    project = parse_number(number)
    token = token_from_env()
    async with http_session() as session:
        board = await fetch_board(
            session, token, org, project, status_field=status_field, url=url
        )
    return blocks.dumps(board_blocks(board, choose_statuses(board, statuses)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", required=True, help="the GitHub organisation")
    parser.add_argument("--status-field", default="Status", help="default: Status")
    parser.add_argument("number", help="the project's number, as in its URL")
    parser.add_argument("statuses", nargs="?", help="comma-separated status names")
    args = parser.parse_args(argv)
    return run(
        lambda: report(
            args.org, args.number, args.statuses, status_field=args.status_field
        )
    )


def _line(item: Item) -> str:
    title = blocks.link(item.url, item.title) if item.url else blocks.escape(item.title)
    if item.assignees:
        return f"• {title} ({', '.join(item.assignees)})"
    return f"• {title}"


def _key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


if __name__ == "__main__":
    raise SystemExit(main())
