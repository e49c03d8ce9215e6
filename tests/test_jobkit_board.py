"""``report board``: a GitHub project board, by status, as Slack blocks.

GitHub's GraphQL API is mocked with aioresponses; the answers are built in the
shapes GitHub documents (ProjectV2, ProjectV2Item, fieldValueByName returning a
ProjectV2ItemFieldSingleSelectValue, content being an Issue, PullRequest or
DraftIssue) and the error bodies GitHub is known to send.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import aiohttp
import pytest
from aioresponses import aioresponses

from jobkit.board import main, report
from jobkit.github import BOARD_QUERY, TOKEN_VARIABLE
from jobkit.script import JobError
from slack_blocks import check_blocks

URL = "https://api.github.com/graphql"
TOKEN = "fake-token-Zx9SECRET0123456789abcdEF"
BOARD_URL = "https://github.com/orgs/acme/projects/1"
STATUSES = ["Todo", "In Progress", "Review", "Done"]
ISSUE_URL = "https://github.com/acme/app/issues/1"


# --- GitHub's answers -------------------------------------------------------------


def item(
    title: str,
    status: str | None = None,
    *,
    url: str = ISSUE_URL,
    assignees: tuple[str, ...] = (),
    kind: str = "Issue",
    archived: bool = False,
) -> dict:
    """A ProjectV2Item node as the board query asks for it."""
    content: dict = {
        "title": title,
        "assignees": {"nodes": [{"login": login} for login in assignees]},
    }
    if kind != "DraftIssue":  # a DraftIssue has no url
        content["url"] = url
    return {
        "isArchived": archived,
        "status": {"name": status} if status else None,
        "content": content,
    }


def page(
    nodes: list[dict],
    end_cursor: str | None = None,
    has_next: bool = False,
    *,
    title: str = "Team board",
    options: list[str] | None = STATUSES,
) -> dict:
    """A whole answer to the board query: one page of the board's items."""
    field = None if options is None else {"options": [{"name": o} for o in options]}
    return {
        "data": {
            "organization": {
                "projectV2": {
                    "title": title,
                    "url": BOARD_URL,
                    "field": field,
                    "items": {
                        "pageInfo": {"hasNextPage": has_next, "endCursor": end_cursor},
                        "nodes": nodes,
                    },
                }
            }
        }
    }


def graphql_error(kind: str | None, message: str, path: list | None = None) -> dict:
    error: dict = {"locations": [{"line": 3, "column": 5}], "message": message}
    if kind:
        error["type"] = kind
    if path:
        error["path"] = path
    return error


def cursor(n: int) -> str:
    return f"Y3Vyc29yOnYyOpHOAAAA{n:04d}"


def epoch(hour: int, minute: int) -> int:
    return int(datetime(2030, 1, 2, hour, minute, tzinfo=UTC).timestamp())


class Recorder:
    """An aioresponses callback keeping a copy of each request's body and headers."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []

    def __call__(self, url, **kwargs) -> None:
        # The job reuses its variables dict between pages, so copy it now.
        self.bodies.append(copy.deepcopy(kwargs["json"]))
        self.headers.append(dict(kwargs.get("headers") or {}))

    @property
    def variables(self) -> list[dict]:
        return [body["variables"] for body in self.bodies]


# --- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    return TOKEN


@pytest.fixture
def mocked():
    with aioresponses() as mock:
        yield mock


def answer(mocked: aioresponses, *pages: dict, recorder: Recorder | None = None):
    for body in pages:
        mocked.post(URL, payload=body, callback=recorder)


async def board(statuses: str | None = None, **options) -> list[dict]:
    """The job's blocks, checked against Slack's limits."""
    return check_blocks(json.loads(await report("acme", "1", statuses, **options)))


def sections(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def headings(blocks: list[dict]) -> list[str]:
    """The first line of each section: the status and its count."""
    return [text.split("\n", 1)[0] for text in sections(blocks)]


def context_text(block: dict) -> str:
    assert block["type"] == "context"
    return block["elements"][0]["text"]


# --- pagination and the request -----------------------------------------------------


async def test_pages_are_followed_with_the_end_cursor(token, mocked):
    recorder = Recorder()
    answer(
        mocked,
        page([item("One", "Todo"), item("Two", "Done")], cursor(100), True),
        page([item("Three", "Todo")], cursor(200), True),
        page([item("Four", "In Progress")], cursor(250), False),
        recorder=recorder,
    )

    blocks = await board()

    assert recorder.variables == [
        {"org": "acme", "number": 1, "field": "Status"},
        {"org": "acme", "number": 1, "field": "Status", "after": cursor(100)},
        {"org": "acme", "number": 1, "field": "Status", "after": cursor(200)},
    ]
    assert all(body["query"] == BOARD_QUERY for body in recorder.bodies)
    for headers in recorder.headers:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["User-Agent"] == "bennettbot-jobs"
    text = "\n".join(sections(blocks))
    for title in ("One", "Two", "Three", "Four"):
        assert f"|{title}>" in text
    assert headings(blocks) == ["*Todo* (2)", "*In Progress* (1)", "*Done* (1)"]
    assert context_text(blocks[1]).endswith("· 4 items")


async def test_one_page_makes_one_request(token, mocked):
    recorder = Recorder()
    answer(mocked, page([item("Only", "Todo")], cursor(1), False), recorder=recorder)

    await board()

    assert len(recorder.bodies) == 1
    assert recorder.variables[0].get("after") is None


async def test_the_token_is_stripped_and_the_status_field_is_sent(monkeypatch, mocked):
    monkeypatch.setenv(TOKEN_VARIABLE, f"  {TOKEN}\n")
    recorder = Recorder()
    answer(
        mocked, page([item("A", "High")], options=["High", "Low"]), recorder=recorder
    )

    blocks = await board(status_field="Priority")

    assert recorder.variables == [{"org": "acme", "number": 1, "field": "Priority"}]
    assert recorder.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert headings(blocks) == ["*High* (1)"]


# --- the report ---------------------------------------------------------------------


async def test_items_are_grouped_by_status_in_the_boards_order(token, mocked):
    answer(
        mocked,
        page(
            [
                item(
                    "Ship it",
                    "Done",
                    url="https://github.com/acme/app/pull/7",
                    kind="PullRequest",
                    assignees=("ada",),
                ),
                item("Loose end"),
                item(
                    "Write docs",
                    "Todo",
                    url="https://github.com/acme/app/issues/3",
                    assignees=("ada", "grace"),
                ),
                item("Old thing", "Todo", archived=True),
                item("Sketch", "In Progress", kind="DraftIssue"),
            ],
            cursor(5),
            True,
            title="Data team: sprint board",
        ),
        page(
            [
                item("Fix login", "Todo", url="https://github.com/acme/app/issues/4"),
                item("Archived too", archived=True),
                item("Another loose end", kind="DraftIssue", assignees=("bob",)),
            ],
            cursor(8),
            title="Data team: sprint board",
        ),
    )

    blocks = await board()

    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Data team: sprint board"},
    }
    assert context_text(blocks[1]) == f"<{BOARD_URL}|Open the board> · 6 items"
    assert sections(blocks) == [
        "*Todo* (2)\n"
        "• <https://github.com/acme/app/issues/3|Write docs> (ada, grace)\n"
        "• <https://github.com/acme/app/issues/4|Fix login>",
        "*In Progress* (1)\n• Sketch",
        "*Done* (1)\n• <https://github.com/acme/app/pull/7|Ship it> (ada)",
        "*No status* (2)\n• <https://github.com/acme/app/issues/1|Loose end>\n"
        "• Another loose end (bob)",
    ]
    assert "Old thing" not in json.dumps(blocks)
    assert "Archived too" not in json.dumps(blocks)


async def test_one_item_is_counted_in_the_singular(token, mocked):
    answer(mocked, page([item("Alone", "Done")]))

    blocks = await board()

    assert context_text(blocks[1]) == f"<{BOARD_URL}|Open the board> · 1 item"


async def test_items_the_token_cannot_see_and_non_select_values(token, mocked):
    hidden = {"isArchived": False, "status": {"name": "Todo"}, "content": None}
    text_value = {**item("Has a text value"), "status": {}}  # fragment did not match
    body = page([hidden, text_value, None])
    # GitHub answers a SAML-protected item with its content null and an error.
    body["errors"] = [
        graphql_error(
            "FORBIDDEN",
            "Resource protected by organization SAML enforcement.",
            ["organization", "projectV2", "items", "nodes", 0, "content"],
        )
    ]
    answer(mocked, body)

    blocks = await board()

    assert sections(blocks) == [
        "*Todo* (1)\n• (an item the token cannot see)",
        f"*No status* (1)\n• <{ISSUE_URL}|Has a text value>",
    ]


async def test_a_board_without_the_status_field_is_an_error(token, mocked):
    # field(name:) is null when the board has no field of that name.
    answer(mocked, page([item("a", "Later"), item("b")], options=None))

    with pytest.raises(JobError) as caught:
        await board()

    assert str(caught.value) == (
        "the board has no single-select field 'Status' "
        "(name another with --status-field in the job config)"
    )


async def test_a_saml_protected_organisation_is_explained_in_githubs_words(
    token, mocked
):
    saml = (
        "Resource protected by organization SAML enforcement. You must grant your "
        "Personal Access token access to this organization."
    )
    answer(
        mocked,
        {
            "data": {"organization": None},
            "errors": [graphql_error("FORBIDDEN", saml, ["organization"])],
        },
    )

    with pytest.raises(JobError) as caught:
        await board()

    assert str(caught.value) == f"GitHub would not show the board: {saml}"


@pytest.mark.parametrize(
    "items",
    [None, {"nodes": None, "pageInfo": None}, {"nodes": [], "pageInfo": None}],
)
async def test_an_answer_in_an_unexpected_shape_is_one_line(token, mocked, items):
    body = page([])
    body["data"]["organization"]["projectV2"]["items"] = items
    answer(mocked, body)

    with pytest.raises(JobError, match="not in the expected shape"):
        await board()


async def test_an_empty_board(token, mocked):
    answer(mocked, page([], None, False, title="Empty"))

    blocks = await board()

    assert blocks == [
        {"type": "header", "text": {"type": "plain_text", "text": "Empty"}},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"<{BOARD_URL}|Open the board> · 0 items"}
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "_The board has no items._"},
        },
    ]


async def test_an_empty_board_with_a_chosen_status(token, mocked):
    answer(mocked, page([]))

    blocks = await board("todo")

    assert sections(blocks) == [
        "_The board has no items._",
        "*Todo* (0)\n_Nothing here._",
    ]


async def test_a_board_of_archived_items_only_is_empty(token, mocked):
    answer(mocked, page([item("Gone", "Todo", archived=True)]))

    blocks = await board()

    assert sections(blocks) == ["_The board has no items._"]
    assert context_text(blocks[1]).endswith("· 0 items")


# --- choosing statuses --------------------------------------------------------------


def filter_board() -> dict:
    return page(
        [
            item("t1", "Todo"),
            item("p1", "In Progress"),
            item("d1", "Done"),
            item("t2", "Todo"),
            item("n1"),
        ]
    )


@pytest.mark.parametrize(
    "wanted",
    [
        "todo,in progress",
        "Todo,InProgress",
        " TODO , in-progress ",
        "todo,,inprogress,",
    ],
)
async def test_statuses_are_matched_ignoring_case_spaces_and_punctuation(
    token, mocked, wanted
):
    answer(mocked, filter_board())

    blocks = await board(wanted)

    assert headings(blocks) == ["*Todo* (2)", "*In Progress* (1)"]


async def test_a_status_named_twice_is_shown_once(token, mocked):
    answer(mocked, filter_board())

    blocks = await board("done,DONE, Done ,d o n e")

    assert sections(blocks) == [f"*Done* (1)\n• <{ISSUE_URL}|d1>"]


async def test_chosen_statuses_are_shown_in_the_order_asked(token, mocked):
    answer(mocked, filter_board())

    blocks = await board("done,todo")

    assert headings(blocks) == ["*Done* (1)", "*Todo* (2)"]


async def test_a_chosen_status_with_no_items(token, mocked):
    answer(mocked, filter_board())

    blocks = await board("review,todo")

    assert sections(blocks)[0] == "*Review* (0)\n_Nothing here._"
    assert headings(blocks) == ["*Review* (0)", "*Todo* (2)"]
    # what is shown, of the whole board
    assert context_text(blocks[1]).endswith("· 2 of 5 items")


async def test_the_items_with_no_status_can_be_chosen(token, mocked):
    answer(mocked, page([item("Loose end"), item("Planned", "Todo")]))

    blocks = await board("nostatus")

    assert headings(blocks) == ["*No status* (1)"]
    assert context_text(blocks[1]).endswith("· 1 of 2 items")


async def test_a_page_cursor_that_does_not_move_on_stops_the_job(token, mocked):
    answer(
        mocked,
        page([item("A", "Todo")], cursor(1), has_next=True),
        page([item("B", "Todo")], cursor(1), has_next=True),
    )

    with pytest.raises(JobError, match="where the next page starts"):
        await board()


async def test_an_unknown_status_is_named_with_the_boards_statuses(token, mocked):
    answer(mocked, filter_board())

    with pytest.raises(JobError) as caught:
        await board("todo,Blocked,nope")

    assert str(caught.value) == (
        "the board has no status 'Blocked', 'nope'; "
        "its statuses are: Todo, In Progress, Review, Done"
    )


async def test_only_commas_is_not_a_status(token, mocked):
    answer(mocked, filter_board())

    with pytest.raises(JobError, match=r"no status ', ,'; its statuses are: Todo"):
        await board(", ,")


# --- Slack's limits -----------------------------------------------------------------


def long_title(n: int) -> str:
    return f"Item {n:03d} " + " ".join(["with a rather long title"] * 8)


def long_line(n: int) -> str:
    return f"• <https://github.com/acme/app/issues/{n}|{long_title(n)}> (ada, bob)"


async def test_a_long_status_is_cut_with_how_many_were_left_out(token, mocked):
    total = 250
    nodes = [
        item(
            long_title(n),
            "Todo",
            url=f"https://github.com/acme/app/issues/{n}",
            assignees=("ada", "bob"),
        )
        for n in range(total)
    ]
    answer(
        mocked,
        page(nodes[:100], cursor(1), True),
        page(nodes[100:200], cursor(2), True),
        page(nodes[200:], cursor(3)),
    )

    blocks = await board()

    [text] = sections(blocks)
    assert len(text) <= 3000
    lines = text.split("\n")
    assert lines[0] == f"*Todo* ({total})"
    shown = lines[1:-1]
    assert 10 < len(shown) < total
    assert shown == [long_line(n) for n in range(len(shown))]  # the first, in order
    left = total - len(shown)
    assert lines[-1] == f"…and {left} more"
    # One more line, and its note, would not have fitted.
    one_more = "\n".join(lines[:-1]) + "\n" + long_line(len(shown))
    assert len(one_more + f"\n…and {left - 1} more") > 3000


@pytest.mark.parametrize(
    ("extra", "after", "shown", "note"),
    [
        (0, [], 29, None),  # the last line fills the section exactly
        (1, [], 28, "…and 1 more"),  # one character too many
        (0, ["z"], 28, "…and 2 more"),  # it fits, but then the note would not
    ],
)
async def test_the_3000_character_boundary(token, mocked, extra, after, shown, note):
    # "*Todo* (29)" or "(30)", then 28 lines of 100 characters, then one that
    # makes the section exactly 3,000 characters long (or one character more).
    titles = [f"{n:02d}" + "x" * 96 for n in range(28)]
    titles.append("y" * (3000 - 11 - 28 * 101 - 1 - 2 + extra))
    titles += after
    answer(mocked, page([item(t, "Todo", kind="DraftIssue") for t in titles]))

    blocks = await board()

    [text] = sections(blocks)
    lines = text.split("\n")
    assert lines[0] == f"*Todo* ({len(titles)})"
    if note is None:
        assert len(text) == 3000
        assert lines[1:] == [f"• {t}" for t in titles]
    else:
        assert lines[1:-1] == [f"• {t}" for t in titles[:shown]]
        assert lines[-1] == note


async def test_statuses_past_fifty_blocks_are_left_out_with_a_note(token, mocked):
    names = [f"Stage {n:02d}" for n in range(60)]
    answer(
        mocked,
        page([item(f"job {n}", name) for n, name in enumerate(names)], options=names),
    )

    blocks = await board()

    assert len(blocks) == 50
    assert blocks[0]["type"] == "header"
    assert headings(blocks) == [f"*{name}* (1)" for name in names[:47]]
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "…and 13 more statuses not shown"}],
    }


@pytest.mark.parametrize(
    ("count", "blocks_shown", "left_out"), [(48, 50, 0), (49, 50, 2)]
)
async def test_the_fifty_block_boundary(token, mocked, count, blocks_shown, left_out):
    names = [f"S{n}" for n in range(count)]
    answer(mocked, page([item("x", name) for name in names], options=names))

    blocks = await board()

    assert len(blocks) == blocks_shown
    if left_out:
        assert context_text(blocks[-1]) == f"…and {left_out} more statuses not shown"
        assert len(sections(blocks)) == count - left_out
    else:
        assert len(sections(blocks)) == count


async def test_titles_and_statuses_are_escaped(token, mocked):
    answer(
        mocked,
        page(
            [
                item("Fix <script> & co > now", "Q&A <1>"),
                item("Draft <b> & > |pipe", "Q&A <1>", kind="DraftIssue"),
            ],
            options=["Q&A <1>"],
            title="R&D <team> board",
        ),
    )

    blocks = await board("q&a 1")

    assert blocks[0]["text"]["text"] == "R&D <team> board"  # plain_text: as it is
    assert sections(blocks) == [
        "*Q&amp;A &lt;1&gt;* (2)\n"
        f"• <{ISSUE_URL}|Fix &lt;script&gt; &amp; co &gt; now>\n"
        "• Draft &lt;b&gt; &amp; &gt; |pipe"
    ]


async def test_a_long_board_title_is_cut(token, mocked):
    answer(mocked, page([item("a", "Todo")], title="A very long board name " * 10))

    blocks = await board()

    text = blocks[0]["text"]["text"]
    assert len(text) == 150
    assert text.endswith("…")
    assert text.startswith("A very long board name A very")


async def test_a_blank_board_title(token, mocked):
    answer(mocked, page([item("a", "Todo")], title="  \n "))

    blocks = await board()

    assert blocks[0]["text"]["text"] == "(untitled)"


# --- errors -------------------------------------------------------------------------

RESET = epoch(14, 7)

NOT_FOUND_PROJECT = {
    "data": {"organization": {"projectV2": None}},
    "errors": [
        graphql_error(
            "NOT_FOUND",
            "Could not resolve to a ProjectV2 with the number 1.",
            ["organization", "projectV2"],
        )
    ],
}
NOT_FOUND_ORG = {
    "data": {"organization": None},
    "errors": [
        graphql_error(
            "NOT_FOUND",
            "Could not resolve to an Organization with the login of 'acme'.",
            ["organization"],
        )
    ],
}
SCOPES_MESSAGE = (
    "Your token has not been granted the required scopes to execute this query. "
    "The 'projectV2' field requires one of the following scopes: ['read:project'], "
    "but your token has only been granted the: ['repo'] scopes. Please modify your "
    "token's scopes at: https://github.com/settings/tokens."
)
SECONDARY = {
    "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits",
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
    "before you try again. If you reach out to GitHub Support for help, please "
    "include the request ID 0C1D:2E3F:4A5B:6C7D:8E9F0A1B.",
}
BAD_GATEWAY = (
    "<!DOCTYPE html>\n<html><head><title>Unicorn! · GitHub</title></head>"
    "<body><h1>No server is currently available to service your request.</h1>"
    "</body></html>"
)

# name: (responses to the board query, what the one-line message says)
ERRORS: dict[str, tuple[list[dict], str]] = {
    "unknown project": (
        [{"payload": NOT_FOUND_PROJECT}],
        "the acme organisation has no project 1",
    ),
    "unknown organisation": (
        [{"payload": NOT_FOUND_ORG}],
        "GitHub has no organisation acme that the token can see",
    ),
    "unknown project on a later page": (
        [
            {"payload": page([item("a")], cursor(1), True)},
            {"payload": NOT_FOUND_PROJECT},
        ],
        "the acme organisation has no project 1",
    ),
    "bad credentials": (
        [
            {
                "status": 401,
                "payload": {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/graphql",
                    "status": "401",
                },
            }
        ],
        f"GitHub refused {TOKEN_VARIABLE} (bad credentials): "
        "it may have expired or been revoked",
    ),
    "RATE_LIMITED": (
        [
            {
                "payload": {
                    "errors": [
                        {
                            "type": "RATE_LIMITED",
                            "code": "graphql_rate_limit",
                            "message": "API rate limit already exceeded for user ID 1.",
                        }
                    ]
                },
                "headers": {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(RESET),
                    "x-ratelimit-resource": "graphql",
                },
            }
        ],
        "GitHub's API rate limit for the bot's token is used up; "
        "it resets at 14:07 UTC",
    ),
    "RATE_LIMIT as GitHub sends it": (
        [
            {
                "payload": {
                    "errors": [
                        {
                            "type": "RATE_LIMIT",
                            "code": "graphql_rate_limit",
                            "message": "API rate limit already exceeded for user ID 1.",
                        }
                    ]
                },
                "headers": {
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(epoch(9, 30)),
                },
            }
        ],
        "GitHub's API rate limit for the bot's token is used up; "
        "it resets at 09:30 UTC",
    ),
    "rate limit 403 without a reset": (
        [
            {
                "status": 403,
                "payload": {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/"
                    "rate-limits-for-the-rest-api",
                },
                "headers": {"x-ratelimit-remaining": "0"},
            }
        ],
        "GitHub's API rate limit for the bot's token is used up; try again in an hour",
    ),
    "secondary rate limit": (
        [{"status": 403, "payload": SECONDARY, "headers": {"retry-after": "60"}}],
        "GitHub is limiting how fast the bot asks; try again in 60 seconds",
    ),
    "secondary rate limit 429 without retry-after": (
        [
            {
                "status": 429,
                "payload": SECONDARY,
                "headers": {"x-ratelimit-remaining": "12"},
            }
        ],
        "GitHub is limiting how fast the bot asks; try again in a few minutes",
    ),
    "insufficient scopes": (
        [
            {
                "payload": {
                    "errors": [graphql_error("INSUFFICIENT_SCOPES", SCOPES_MESSAGE)]
                }
            }
        ],
        f"{TOKEN_VARIABLE} lacks a scope this report needs "
        "(it needs repo and read:project)",
    ),
    "insufficient scopes with partial data": (
        [
            {
                "payload": {
                    "data": {"organization": {"projectV2": None}},
                    "errors": [graphql_error("INSUFFICIENT_SCOPES", SCOPES_MESSAGE)],
                }
            }
        ],
        f"{TOKEN_VARIABLE} lacks a scope this report needs",
    ),
    "query failed": (
        [
            {
                "payload": {
                    "data": None,
                    "errors": [
                        {
                            "message": "Something went wrong while executing your "
                            "query. This may be the result of a timeout, or it "
                            "could be a GitHub bug. Please include "
                            "`0C1D:2E3F:4A5B` when reporting this issue."
                        }
                    ],
                }
            }
        ],
        "GitHub could not run the query: Something went wrong while executing "
        "your query.",
    ),
    "502 with an HTML body": (
        [{"status": 502, "body": BAD_GATEWAY, "content_type": "text/html"}],
        "GitHub answered with HTTP 502 and a body that is not JSON; try again later",
    ),
    "503 with a JSON message": (
        [{"status": 503, "payload": {"message": "Service Unavailable"}}],
        "GitHub answered with HTTP 503: Service Unavailable",
    ),
    "unknown status": (
        [{"payload": page([item("a", "Todo")])}],
        "the board has no status 'Blocked'; its statuses are: Todo, In Progress, "
        "Review, Done",
    ),
}


def respond(mocked: aioresponses, responses: list[dict]) -> None:
    for response in responses:
        mocked.post(URL, **response)


def statuses_for(name: str) -> str | None:
    return "Blocked" if name == "unknown status" else None


@pytest.mark.parametrize("name", ERRORS)
async def test_errors_are_explained_in_one_line(token, mocked, name):
    responses, expected = ERRORS[name]
    respond(mocked, responses)

    with pytest.raises(JobError) as caught:
        await board(statuses_for(name))

    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert TOKEN not in message
    assert sum(map(len, mocked.requests.values())) == len(responses)


@pytest.mark.parametrize("name", ERRORS)
def test_main_reports_errors_on_stderr(token, mocked, capsys, name):
    responses, expected = ERRORS[name]
    respond(mocked, responses)
    args = ["--org", "acme", "1"]
    if statuses_for(name):
        args.append(statuses_for(name))

    assert main(args) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: {expected}")
    assert err.endswith("\n") and err.count("\n") == 1
    assert TOKEN not in err


async def test_a_missing_token_makes_no_request(monkeypatch, mocked):
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)

    with pytest.raises(JobError) as caught:
        await board()

    assert str(caught.value) == (
        f"{TOKEN_VARIABLE} is not set: the bot needs a GitHub token "
        "(classic, with the repo and read:project scopes) to read project boards"
    )
    assert mocked.requests == {}


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_main_without_a_token(monkeypatch, mocked, capsys, value):
    monkeypatch.setenv(TOKEN_VARIABLE, value)

    assert main(["--org", "acme", "1"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"error: {TOKEN_VARIABLE} is not set: the bot needs a GitHub token "
        "(classic, with the repo and read:project scopes) to read project boards\n"
    )
    assert mocked.requests == {}


@pytest.mark.parametrize(
    "number", ["abc", "0", "00", "-1", "1.5", " 1", "", "²", "١٢", "2147483648"]
)
async def test_a_bad_project_number_makes_no_request(token, mocked, number):
    with pytest.raises(JobError) as caught:
        await report("acme", number)

    assert str(caught.value) == (
        f"the project number should be a whole number like 12, not {number!r}"
    )
    assert mocked.requests == {}


@pytest.mark.parametrize("number", ["zero", "0", "²"])
def test_main_with_a_bad_project_number(token, mocked, capsys, number):
    assert main(["--org", "acme", number]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"error: the project number should be a whole number like 12, not {number!r}\n"
    )
    assert mocked.requests == {}


async def test_a_connection_error_is_not_caught_by_report(token, mocked):
    mocked.post(URL, exception=aiohttp.ClientConnectionError("Cannot connect to host"))

    with pytest.raises(aiohttp.ClientConnectionError):
        await board()


def test_main_reports_a_connection_error(token, mocked, capsys):
    mocked.post(
        URL,
        exception=aiohttp.ClientConnectionError(
            "Cannot connect to host api.github.com:443 ssl:default"
        ),
    )

    assert main(["--org", "acme", "1"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: a web request failed (Cannot connect to host api.github.com:443 "
        "ssl:default); try again later\n"
    )
    assert TOKEN not in err


def test_main_reports_a_timeout(token, mocked, capsys):
    mocked.post(URL, timeout=True)

    assert main(["--org", "acme", "1"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: a web request timed out; try again later\n"


# --- main ---------------------------------------------------------------------------


def test_main_prints_the_blocks(token, mocked, capsys):
    recorder = Recorder()
    answer(
        mocked,
        page([item("Plan", "Todo", assignees=("ada",))], cursor(1), True),
        page([item("Naïve café ☕", "Done", kind="DraftIssue")], cursor(2)),
        recorder=recorder,
    )

    assert main(["--org", "acme", "1"]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert out.endswith("\n")
    blocks = check_blocks(json.loads(out))
    assert blocks[0]["text"]["text"] == "Team board"
    assert sections(blocks) == [
        f"*Todo* (1)\n• <{ISSUE_URL}|Plan> (ada)",
        "*Done* (1)\n• Naïve café ☕",
    ]
    assert "Naïve café ☕" in out  # not escaped as \u sequences
    assert [v.get("after") for v in recorder.variables] == [None, cursor(1)]
    assert recorder.variables[0] == {"org": "acme", "number": 1, "field": "Status"}


def test_main_with_statuses_and_a_status_field(token, mocked, capsys):
    recorder = Recorder()
    answer(
        mocked,
        page([item("a", "P1"), item("b", "P2"), item("c")], options=["P1", "P2"]),
        recorder=recorder,
    )

    code = main(["--org", "opensafely", "--status-field", "Priority", "12", "p2"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert headings(check_blocks(json.loads(out))) == ["*P2* (1)"]
    assert recorder.variables == [
        {"org": "opensafely", "number": 12, "field": "Priority"}
    ]
