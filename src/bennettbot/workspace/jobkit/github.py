"""Reading a GitHub Projects (v2) board through GitHub's GraphQL API."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from jobkit.script import JobError, read_json

API_URL = "https://api.github.com/graphql"
TOKEN_VARIABLE = "DATA_TEAM_GITHUB_API_TOKEN"

BOARD_QUERY = """
query Board($org: String!, $number: Int!, $field: String!, $after: String) {
  organization(login: $org) {
    projectV2(number: $number) {
      title
      url
      field(name: $field) {
        ... on ProjectV2SingleSelectField { options { name } }
      }
      items(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes {
          isArchived
          status: fieldValueByName(name: $field) {
            ... on ProjectV2ItemFieldSingleSelectValue { name }
          }
          content {
            ... on DraftIssue { title assignees(first: 10) { nodes { login } } }
            ... on Issue { title url assignees(first: 10) { nodes { login } } }
            ... on PullRequest { title url assignees(first: 10) { nodes { login } } }
          }
        }
      }
    }
  }
}
"""


@dataclass(frozen=True)
class Item:
    title: str
    url: str | None  # None for draft issues
    assignees: tuple[str, ...]
    status: str | None


@dataclass(frozen=True)
class Board:
    title: str
    url: str
    statuses: tuple[str, ...]  # in the board's order
    items: tuple[Item, ...]


def token_from_env() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise JobError(
            f"{TOKEN_VARIABLE} is not set: the bot needs a GitHub token "
            "(classic, with the repo and read:project scopes) to read project boards"
        )
    return token


async def fetch_board(
    session: aiohttp.ClientSession,
    token: str,
    org: str,
    number: int,
    *,
    status_field: str = "Status",
    url: str = API_URL,
) -> Board:
    """The board's title, statuses and every item that is not archived."""
    variables: dict = {"org": org, "number": number, "field": status_field}
    items: list[Item] = []
    while True:
        data, errors = await query(session, token, BOARD_QUERY, variables, url=url)
        project = _project(data, errors, org, number)
        try:
            for node in project["items"]["nodes"]:
                if node and not node.get("isArchived"):
                    items.append(_item(node))
            page = project["items"]["pageInfo"]
            more, after = page["hasNextPage"], page["endCursor"]
        except (KeyError, TypeError, AttributeError):
            raise JobError("GitHub's answer is not in the expected shape") from None
        if not more:
            break
        if not after or after == variables.get("after"):
            raise JobError("GitHub's answer does not say where the next page starts")
        variables["after"] = after
    field = project.get("field")
    if field is None:
        raise JobError(
            f"the board has no single-select field {status_field!r} "
            "(name another with --status-field in the job config)"
        )
    return Board(
        title=project.get("title") or "",
        url=project.get("url") or "",
        statuses=tuple(option["name"] for option in field.get("options") or []),
        items=tuple(items),
    )


def _project(data: dict, errors: list[dict], org: str, number: int) -> dict:
    """The project in ``data``; when it is missing, why, in GitHub's words if
    they say more than "not found"."""
    organisation = data.get("organization")
    project = organisation.get("projectV2") if isinstance(organisation, dict) else None
    if isinstance(project, dict):
        return project
    other = [e for e in errors if e.get("type") not in (None, "NOT_FOUND")]
    if other:
        raise JobError(f"GitHub would not show the board: {other[0].get('message')}")
    if organisation is None:
        raise JobError(f"GitHub has no organisation {org} that the token can see")
    raise JobError(f"the {org} organisation has no project {number}")


async def query(
    session: aiohttp.ClientSession,
    token: str,
    text: str,
    variables: dict,
    *,
    url: str = API_URL,
) -> tuple[dict, list[dict]]:
    """The ``data`` of a GraphQL query and any errors that came with it, or a
    ``JobError`` saying what went wrong."""
    async with session.post(
        url,
        json={"query": text, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        body = await read_json(response, "GitHub")
        _raise_for_limits(response, body)
        if response.status == 401:
            raise JobError(
                f"GitHub refused {TOKEN_VARIABLE} (bad credentials): "
                "it may have expired or been revoked"
            )
        if response.status >= 400 or not isinstance(body, dict):
            message = body.get("message") if isinstance(body, dict) else None
            raise JobError(
                f"GitHub answered with HTTP {response.status}"
                + (f": {message}" if message else "")
            )
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    for error in errors:
        if error.get("type") == "INSUFFICIENT_SCOPES":
            raise JobError(
                f"{TOKEN_VARIABLE} lacks a scope this report needs "
                "(it needs repo and read:project)"
            )
    data = body.get("data")
    if data is None:
        first = errors[0].get("message") if errors else "no data in the answer"
        raise JobError(f"GitHub could not run the query: {first}")
    if not isinstance(data, dict):
        raise JobError("GitHub's answer is not in the expected shape")
    return data, errors


def _raise_for_limits(response: aiohttp.ClientResponse, body: object) -> None:
    used_up = response.status in (403, 429) and (
        response.headers.get("x-ratelimit-remaining") == "0"
    )
    # The schema names the type RATE_LIMITED; GitHub has been seen to answer
    # {"type": "RATE_LIMIT", "code": "graphql_rate_limit"} with HTTP 200.
    if used_up or _has_error_type(body, "RATE_LIMITED", "RATE_LIMIT"):
        raise JobError(
            "GitHub's API rate limit for the bot's token is used up; "
            + _when(response.headers.get("x-ratelimit-reset"))
        )
    message = body.get("message", "") if isinstance(body, dict) else ""
    if response.status in (403, 429) and "secondary rate limit" in str(message).lower():
        retry = response.headers.get("retry-after", "")
        wait = f"in {retry} seconds" if retry.isdigit() else "in a few minutes"
        raise JobError(f"GitHub is limiting how fast the bot asks; try again {wait}")


def _has_error_type(body: object, *kinds: str) -> bool:
    if not isinstance(body, dict):
        return False
    errors = body.get("errors")
    return isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("type") in kinds for e in errors
    )


def _when(reset: str | None) -> str:
    if reset and reset.isdigit():
        at = datetime.fromtimestamp(int(reset), UTC)
        return f"it resets at {at:%H:%M} UTC"
    return "try again in an hour"


def _item(node: dict) -> Item:
    content = node.get("content") or {}
    assignees = (content.get("assignees") or {}).get("nodes") or []
    return Item(
        title=content.get("title") or "(an item the token cannot see)",
        url=content.get("url"),
        assignees=tuple(a["login"] for a in assignees if a and a.get("login")),
        status=(node.get("status") or {}).get("name"),
    )
