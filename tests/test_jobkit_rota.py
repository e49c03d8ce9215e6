"""The rota job (jobkit.rota) and its Google client (jobkit.google).

Google's token endpoint and the Sheets API are faked with aioresponses, which
answer in the shapes Google documents; the service account key is a real RSA
key made for this module, so the signed JWT is checked for real. The
out-of-office period is written with the bot's own Store."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from yarl import URL

from bennettbot.store import Store
from jobkit import rota
from jobkit.google import ServiceAccount
from jobkit.script import JobError
from service_accounts import pkcs8_pem, service_account_key
from slack_blocks import check_blocks

# Google's endpoints and values, restated here rather than imported.
TOKEN_URL = "https://oauth2.googleapis.com/token"
SHEETS_VALUES = re.compile(r"https://sheets\.googleapis\.com/v4/spreadsheets/")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
VALUES_QUERY = {
    "majorDimension": "ROWS",
    "valueRenderOption": "UNFORMATTED_VALUE",
    "dateTimeRenderOption": "SERIAL_NUMBER",
}

EMAIL = "rota-reader@bennett-bot-123456.iam.gserviceaccount.com"
SHEET_ID = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
RANGE = "'Rota'!A1:C40"
TITLE = "Tech support rota"
ACCESS_TOKEN = "ya29.c.c0ASRK0GZnotarealtokenjustfortests_Xq3"
TODAY = date(2026, 11, 27)  # a Friday
LINK = f"<https://docs.google.com/spreadsheets/d/{SHEET_ID}|Open the rota spreadsheet>"


def serial(day: date) -> int:
    """``day`` as a Google Sheets date serial number (day 0 is 1899-12-30)."""
    return (day - date(1899, 12, 30)).days


MON_16, MON_23, MON_30 = date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30)
ROWS = [
    ["Week commencing", "Primary", "Secondary"],
    [serial(MON_16), "Dana", "Eve"],
    [serial(MON_23), "Alice", "Bob"],
    [serial(MON_30), "Carol", "Dana"],
]
THIS_WEEK = "*This week* (Mon 23 Nov – Fri 27 Nov)"
NEXT_WEEK = "*Next week* (Mon 30 Nov – Fri 4 Dec)"


# -- the service account key ---------------------------------------------------


@dataclass(frozen=True)
class Key:
    info: dict
    public_pem: bytes
    path: Path

    @property
    def secret_lines(self) -> list[str]:
        """The lines of the private key that must never be shown."""
        return [
            line for line in self.info["private_key"].splitlines() if "--" not in line
        ]


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    info, public = service_account_key(
        EMAIL,
        token_uri=TOKEN_URL,
        auth_uri="https://accounts.google.com/o/oauth2/auth",
        universe_domain="googleapis.com",
    )
    path = tmp_path_factory.mktemp("gcp") / "service-account.json"
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return Key(info, public, path)


@pytest.fixture
def credentials(key: Key, monkeypatch: pytest.MonkeyPatch) -> Key:
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", str(key.path))
    monkeypatch.delenv("DB_PATH", raising=False)
    return key


def other_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "other-key.json"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", str(path))
    return path


# -- Google, faked -----------------------------------------------------------


@dataclass
class Google:
    """Google's token endpoint and Sheets values endpoint, each answering once
    per registration, checking what the job sends."""

    mocked: aioresponses
    key: Key
    token_forms: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)
    sheet_urls: list[URL] = field(default_factory=list)

    def token(self, status: int = 200, **answer: object) -> None:
        if not answer:
            answer = {
                "payload": {
                    "access_token": ACCESS_TOKEN,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                }
            }

        def respond(url: URL, **kwargs: object) -> CallbackResult:
            form = kwargs["data"]
            assert isinstance(form, dict)
            self.token_forms.append(form)
            assert set(form) == {"grant_type", "assertion"}
            assert form["grant_type"] == JWT_GRANT
            assertion = form["assertion"]
            header = jwt.decode_header(assertion)
            assert header["alg"] == "RS256"
            assert header["kid"] == self.key.info["private_key_id"]
            # checks the signature, the audience and that iat/exp hold now
            claims = jwt.decode(
                assertion, certs=self.key.public_pem, audience=TOKEN_URL
            )
            assert claims["iss"] == EMAIL
            assert claims["scope"] == SCOPE
            assert claims["exp"] - claims["iat"] == 3600
            self.claims.append(claims)
            return CallbackResult(status=status, **answer)  # type: ignore[arg-type]

        self.mocked.post(TOKEN_URL, callback=respond)

    def sheet(
        self,
        status: int = 200,
        sheet_id: str = SHEET_ID,
        cell_range: str = RANGE,
        **answer: object,
    ) -> None:
        def respond(url: URL, **kwargs: object) -> CallbackResult:
            self.sheet_urls.append(url)
            assert self.token_forms, "the token is asked for first"
            assert url.scheme == "https" and url.host == "sheets.googleapis.com"
            assert url.path == f"/v4/spreadsheets/{sheet_id}/values/{cell_range}"
            assert dict(url.query) == VALUES_QUERY
            headers = kwargs["headers"]  # the session's, with the request's
            assert headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"  # type: ignore[index]
            assert headers["User-Agent"] == "bennettbot-jobs"  # type: ignore[index]
            return CallbackResult(status=status, **answer)  # type: ignore[arg-type]

        self.mocked.get(SHEETS_VALUES, callback=respond)

    def rows(self, rows: list[list], cell_range: str = RANGE) -> None:
        """A token, then the sheet answering with ``rows``, as Google does."""
        self.token()
        payload: dict = {"range": "'Rota'!A1:C40", "majorDimension": "ROWS"}
        if rows:  # Google leaves "values" out when the range is empty
            payload["values"] = rows
        self.sheet(cell_range=cell_range, payload=payload)


@pytest.fixture
def google(credentials: Key) -> Iterator[Google]:
    with aioresponses() as mocked:  # and any request not registered fails
        yield Google(mocked, credentials)


async def report(today: date = TODAY, **options: object) -> list[dict]:
    output = await rota.report(TITLE, SHEET_ID, RANGE, today, **options)  # type: ignore[arg-type]
    return check_blocks(json.loads(output))


def texts(blocks: list[dict]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


async def write_db(path: Path, period: tuple[date, date] | None) -> Path:
    store = await Store.open(path)
    try:
        if period:
            await store.set_out_of_office(*period)
    finally:
        await store.close()
    return path


# -- parse_rota ----------------------------------------------------------------


def test_serial_numbers_count_days_from_30_december_1899():
    assert date(1899, 12, 30) + timedelta(days=46349) == MON_23
    assert serial(MON_23) == 46349
    assert MON_23.weekday() == 0


def test_parse_rota_reads_roles_and_serial_date_cells():
    parsed = rota.parse_rota(ROWS)
    assert parsed.roles == ("Primary", "Secondary")
    assert parsed.weeks == {
        MON_16: ("Dana", "Eve"),
        MON_23: ("Alice", "Bob"),
        MON_30: ("Carol", "Dana"),
    }


@pytest.mark.parametrize(
    "cell",
    [
        46349,
        46349.0,
        46349.75,  # a date-time cell: 18:00 on the Monday
        "2026-11-23",
        "23/11/2026",
        "23 Nov 2026",
        "23 November 2026",
        "  2026-11-23 ",
    ],
)
def test_parse_rota_reads_dates(cell: object):
    parsed = rota.parse_rota([["Week", "On duty"], [cell, "Alice"]])
    assert parsed.weeks == {MON_23: ("Alice",)}


@pytest.mark.parametrize(
    "cell",
    [
        46351,  # Wednesday
        46353.5,  # Friday noon
        "2026-11-26",  # Thursday
        "28/11/2026",  # Saturday
        "29 Nov 2026",  # Sunday
    ],
)
def test_parse_rota_maps_a_date_mid_week_to_its_monday(cell: object):
    parsed = rota.parse_rota([["Week", "On duty"], [cell, "Alice"]])
    assert parsed.weeks == {MON_23: ("Alice",)}


def test_parse_rota_reads_slashed_dates_day_first():
    parsed = rota.parse_rota([["Week", "On duty"], ["03/11/2026", "Alice"]])
    assert parsed.weeks == {date(2026, 11, 2): ("Alice",)}  # Tue 3 Nov's Monday


def test_parse_rota_skips_blank_and_notes_rows():
    rows = [
        ["Week", "Primary", "Secondary"],
        [],  # a blank row in the middle of the range
        [""],
        ["Notes: swap with someone if you are away"],
        ["", "Alice", "Bob"],
        ["TBC", "Carol"],
        ["11/23/2026", "US order"],  # month 23: not a date
        [0, "Zero"],
        [-3, "Negative"],
        [3_000_000, "After 9999"],
        [True, "A checkbox"],
        [serial(MON_23), "Dana", "Eve"],
    ]
    assert rota.parse_rota(rows).weeks == {MON_23: ("Dana", "Eve")}


def test_parse_rota_pads_short_rows_and_ignores_extra_cells():
    rows = [
        ["Week", "Primary", "Secondary", "Backup"],
        [serial(MON_16)],
        [serial(MON_23), "Alice"],  # Google leaves trailing empty cells out
        [serial(MON_30), "Carol", "Dana", "Eve", "a note beyond the header"],
    ]
    assert rota.parse_rota(rows).weeks == {
        MON_16: ("", "", ""),
        MON_23: ("Alice", "", ""),
        MON_30: ("Carol", "Dana", "Eve"),
    }


def test_parse_rota_strips_cells_and_reads_numbers_as_text():
    rows = [[" Week ", " Primary ", " Pager "], [serial(MON_23), " Alice  ", 4412]]
    parsed = rota.parse_rota(rows)
    assert parsed.roles == ("Primary", "Pager")
    assert parsed.weeks == {MON_23: ("Alice", "4412")}


def test_parse_rota_refuses_an_empty_range():
    with pytest.raises(JobError, match="empty"):
        rota.parse_rota([])


@pytest.mark.parametrize(
    "rows",
    [
        [["Week"]],
        [["Week"], [serial(MON_23), "Alice"]],
        [[], [serial(MON_23), "Alice"]],  # an empty first row
    ],
)
def test_parse_rota_needs_a_role_column(rows: list[list]):
    with pytest.raises(JobError, match="first row"):
        rota.parse_rota(rows)


# -- the report ----------------------------------------------------------------


async def test_report_shows_this_week_and_next(google: Google):
    google.rows(ROWS)
    blocks = await report()
    assert blocks == [
        {"type": "header", "text": {"type": "plain_text", "text": TITLE}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{THIS_WEEK}\nPrimary: Alice\nSecondary: Bob",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{NEXT_WEEK}\nPrimary: Carol\nSecondary: Dana",
            },
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": LINK}]},
    ]
    assert len(google.token_forms) == 1 and len(google.sheet_urls) == 1


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4], ids=lambda n: f"Mon+{n}")
async def test_this_week_is_the_week_of_today(google: Google, offset: int):
    google.rows(ROWS)
    blocks = await report(today=MON_23 + timedelta(days=offset))
    assert texts(blocks)[0].startswith(f"{THIS_WEEK}\nPrimary: Alice")
    assert texts(blocks)[1].startswith(f"{NEXT_WEEK}\nPrimary: Carol")


@pytest.mark.parametrize("offset", [5, 6], ids=["Saturday", "Sunday"])
async def test_at_a_weekend_this_week_is_the_coming_one(google: Google, offset: int):
    google.rows(ROWS)
    blocks = await report(today=MON_23 + timedelta(days=offset))
    assert texts(blocks)[0].startswith(
        "*This week* (Mon 30 Nov – Fri 4 Dec)\nPrimary: Carol"
    )
    assert texts(blocks)[1].startswith("*Next week* (Mon 7 Dec – Fri 11 Dec)")


async def test_a_one_role_sheet_shows_just_the_name(google: Google):
    google.rows([["Week", "On duty"], ["2026-11-23", "Alice"], ["2026-11-30", "Carol"]])
    blocks = await report()
    assert texts(blocks) == [f"{THIS_WEEK}\nAlice", f"{NEXT_WEEK}\nCarol"]


async def test_a_week_missing_from_the_sheet_has_no_one(google: Google):
    google.rows(ROWS[:3])  # nothing for the week of 30 November
    blocks = await report()
    assert texts(blocks) == [
        f"{THIS_WEEK}\nPrimary: Alice\nSecondary: Bob",
        f"{NEXT_WEEK}\n_No one is on the rota._",
    ]


async def test_a_week_with_empty_cells_has_no_one_or_nobody_in_a_role(google: Google):
    google.rows([ROWS[0], [serial(MON_23)], [serial(MON_30), "", "Dana"]])
    blocks = await report()
    assert texts(blocks) == [
        f"{THIS_WEEK}\n_No one is on the rota._",
        f"{NEXT_WEEK}\nPrimary: nobody\nSecondary: Dana",
    ]


async def test_a_role_without_a_name_is_on_duty(google: Google):
    google.rows([["Week", "", "Backup"], [serial(MON_23), "Alice", "Bob"]])
    blocks = await report()
    assert texts(blocks)[0] == f"{THIS_WEEK}\nOn duty: Alice\nBackup: Bob"


async def test_names_and_roles_are_escaped(google: Google):
    google.rows(
        [
            ["Week", "R&D <ops>", "Support"],
            [serial(MON_23), "Tom & Jerry", "<!channel> <@U123>"],
        ]
    )
    blocks = await report()
    assert texts(blocks)[0] == (
        f"{THIS_WEEK}\nR&amp;D &lt;ops&gt;: Tom &amp; Jerry\n"
        "Support: &lt;!channel&gt; &lt;@U123&gt;"
    )


async def test_a_one_role_name_is_escaped(google: Google):
    google.rows([["Week", "On duty"], [serial(MON_23), "A & B <c>"]])
    blocks = await report()
    assert texts(blocks)[0] == f"{THIS_WEEK}\nA &amp; B &lt;c&gt;"


async def test_the_report_links_to_the_spreadsheet(google: Google):
    google.rows(ROWS)
    blocks = await report()
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": LINK}],
    }


async def test_a_long_title_is_cut_to_fit_a_header(google: Google):
    google.rows(ROWS)
    output = await rota.report("Rota " * 60, SHEET_ID, RANGE, TODAY)
    header = check_blocks(json.loads(output))[0]
    assert len(header["text"]["text"]) <= 150


async def test_huge_cells_still_make_a_valid_message(google: Google):
    google.rows(
        [
            ["Week", "Primary", "Secondary"],
            [serial(MON_23), "&" * 2000, "Bob"],  # 10,000 characters escaped
            [serial(MON_30), "Carol", "x" * 4000],
        ]
    )
    blocks = await report()
    this_week, next_week = texts(blocks)
    assert this_week.startswith(THIS_WEEK) and "…and 2 more" in this_week
    assert next_week == f"{NEXT_WEEK}\nPrimary: Carol\n…and 1 more"


async def test_many_roles_are_cut_to_fit_a_section(google: Google):
    roles = [f"Role number {n} with a long name" for n in range(200)]
    google.rows(
        [["Week", *roles], [serial(MON_23), *(f"Person {n}" for n in range(200))]]
    )
    blocks = await report()
    this_week = texts(blocks)[0]
    assert this_week.startswith(
        f"{THIS_WEEK}\nRole number 0 with a long name: Person 0"
    )
    assert re.search(r"\n…and \d+ more$", this_week)


async def test_a_one_role_huge_cell_still_makes_a_valid_message(google: Google):
    google.rows([["Week", "On duty"], [serial(MON_23), "y" * 5000]])
    blocks = await report()
    assert texts(blocks)[0] == f"{THIS_WEEK}\n…and 1 more"


async def test_an_empty_range_is_an_error(google: Google):
    google.rows([])  # the body has no "values" at all
    with pytest.raises(JobError, match="the rota range is empty"):
        await report()


async def test_the_range_and_sheet_id_are_quoted_in_the_url(google: Google):
    cell_range = "Rota 2026/27 #1?!A1:C40"
    google.rows(ROWS, cell_range=cell_range)
    output = await rota.report(TITLE, SHEET_ID, cell_range, TODAY)
    check_blocks(json.loads(output))
    [url] = google.sheet_urls
    assert url.raw_path == (
        f"/v4/spreadsheets/{SHEET_ID}/values/Rota%202026%2F27%20%231%3F!A1:C40"
    )
    assert url.fragment == ""


async def test_the_token_endpoint_defaults_to_googles(
    google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    info = {k: v for k, v in google.key.info.items() if k != "token_uri"}
    other_key_file(tmp_path, monkeypatch, json.dumps(info))
    google.rows(ROWS)  # the token callback checks the audience is TOKEN_URL
    await report()
    assert google.claims[0]["aud"] == TOKEN_URL


def test_the_assertion_is_signed_by_the_key_and_no_other(key: Key):
    assertion = ServiceAccount(key.info).assertion(SCOPE)
    claims = jwt.decode(assertion, certs=key.public_pem, audience=TOKEN_URL)
    assert claims["iss"] == EMAIL and claims["scope"] == SCOPE
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger_pem = stranger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="signature"):
        jwt.decode(assertion, certs=stranger_pem, audience=TOKEN_URL)


# -- out of office ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "note"),
    [
        (
            date(2026, 11, 25),
            date(2026, 12, 2),
            "Tech-support is out of office until Wed 2 Dec 2026.",
        ),
        (TODAY, TODAY, "Tech-support is out of office until Fri 27 Nov 2026."),
        (
            date(2026, 11, 20),
            TODAY,
            "Tech-support is out of office until Fri 27 Nov 2026.",
        ),
        (
            date(2026, 11, 28),
            date(2026, 11, 30),
            "Tech-support will be out of office from Sat 28 Nov 2026 "
            "to Mon 30 Nov 2026.",
        ),
        (
            date(2026, 12, 7),
            date(2026, 12, 11),
            "Tech-support will be out of office from Mon 7 Dec 2026 "
            "to Fri 11 Dec 2026.",
        ),
        (date(2026, 11, 16), date(2026, 11, 26), None),  # over yesterday
    ],
    ids=["active", "today-only", "ends-today", "tomorrow", "future", "past"],
)
async def test_out_of_office_period(
    google: Google,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    start: date,
    end: date,
    note: str | None,
):
    await store.set_out_of_office(start, end)  # the bot keeps its store open
    monkeypatch.setenv("DB_PATH", str(tmp_path / "bot.db"))
    google.rows(ROWS)
    blocks = await report(out_of_office=True)
    if note is None:
        assert len(blocks) == 4
        assert "out of office" not in json.dumps(blocks)
    else:
        assert len(blocks) == 5
        assert blocks[3] == {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f":palm_tree: {note}"},
        }
        assert blocks[-1]["elements"][0]["text"] == LINK
    assert capsys.readouterr().err == ""


async def test_out_of_office_is_read_from_a_closed_database(
    google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = await write_db(tmp_path / "data" / "bot.db", (TODAY, date(2026, 12, 1)))
    monkeypatch.setenv("DB_PATH", str(path))
    google.rows(ROWS)
    blocks = await report(out_of_office=True)
    assert "out of office until Tue 1 Dec 2026" in texts(blocks)[2]


async def test_no_out_of_office_period_is_not_mentioned(
    google: Google,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    await store.set_out_of_office(TODAY, TODAY)
    await store.clear_out_of_office()
    monkeypatch.setenv("DB_PATH", str(tmp_path / "bot.db"))
    google.rows(ROWS)
    blocks = await report(out_of_office=True)
    assert len(blocks) == 4
    assert capsys.readouterr().err == ""


async def test_out_of_office_in_a_database_whose_path_needs_quoting(
    google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "bot #1?mode=rw&x=%41"
    path = await write_db(folder / "bot.db", (TODAY, TODAY))
    monkeypatch.setenv("DB_PATH", str(path))
    google.rows(ROWS)
    blocks = await report(out_of_office=True)
    assert "out of office until Fri 27 Nov 2026" in texts(blocks)[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no stray db


def _missing_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PATH", str(tmp_path / "missing.db"))


def _unset_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_PATH", raising=False)


def _empty_db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PATH", "")


def _db_without_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY)")
    monkeypatch.setenv("DB_PATH", str(path))


def _not_a_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bot.db"
    path.write_text("this is not a database\n" * 100)
    monkeypatch.setenv("DB_PATH", str(path))


@pytest.mark.parametrize(
    ("setup", "warning"),
    [
        (_missing_db, "unable to open database file"),
        (_unset_db, "DB_PATH is not set"),
        (_empty_db_path, "DB_PATH is not set"),
        (_db_without_table, "no such table: tech_support_ooo"),
        (_not_a_db, "file is not a database"),
    ],
    ids=["no-file", "unset", "empty", "no-table", "not-a-db"],
)
async def test_out_of_office_unknown_warns_and_reports(
    google: Google,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[Path, pytest.MonkeyPatch], None],
    warning: str,
):
    setup(tmp_path, monkeypatch)
    google.rows(ROWS)
    blocks = await report(out_of_office=True)
    assert texts(blocks) == [
        f"{THIS_WEEK}\nPrimary: Alice\nSecondary: Bob",
        f"{NEXT_WEEK}\nPrimary: Carol\nSecondary: Dana",
    ]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("warning: ") and captured.err.count("\n") == 1
    assert "out of office not checked" in captured.err and warning in captured.err
    assert not (tmp_path / "missing.db").exists()  # read-only: nothing created


async def test_without_the_flag_the_database_is_not_read(
    google: Google,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    await store.set_out_of_office(date(2026, 11, 20), date(2026, 12, 20))
    monkeypatch.setenv("DB_PATH", str(tmp_path / "bot.db"))
    google.rows(ROWS)
    assert len(await report()) == 4
    monkeypatch.setenv("DB_PATH", str(tmp_path / "missing.db"))
    google.rows(ROWS)
    assert len(await report()) == 4
    assert capsys.readouterr().err == ""  # no warning: it never tried


# -- main: what the job prints -------------------------------------------------


def run_main(
    capsys: pytest.CaptureFixture[str], *options: str, cell_range: str = RANGE
) -> tuple[int, str, str]:
    code = rota.main(
        [
            "--title",
            TITLE,
            "--sheet",
            SHEET_ID,
            "--range",
            cell_range,
            "--today",
            TODAY.isoformat(),
            *options,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def failure(result: tuple[int, str, str], key: Key) -> str:
    """The one-line error of a job that failed, checked to show no secret."""
    code, out, err = result
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1
    assert ACCESS_TOKEN not in err
    assert not any(line in err for line in key.secret_lines)
    return err.removeprefix("error: ").removesuffix("\n")


def test_main_prints_the_blocks(google: Google, capsys: pytest.CaptureFixture[str]):
    google.rows(ROWS)
    code, out, err = run_main(capsys)
    assert (code, err) == (0, "")
    blocks = check_blocks(json.loads(out))
    assert texts(blocks) == [
        f"{THIS_WEEK}\nPrimary: Alice\nSecondary: Bob",
        f"{NEXT_WEEK}\nPrimary: Carol\nSecondary: Dana",
    ]


def test_main_with_out_of_office(
    google: Google,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    path = asyncio.run(write_db(tmp_path / "bot.db", (TODAY, date(2026, 12, 4))))
    monkeypatch.setenv("DB_PATH", str(path))
    google.rows(ROWS)
    code, out, err = run_main(capsys, "--out-of-office")
    assert (code, err) == (0, "")
    blocks = check_blocks(json.loads(out))
    assert texts(blocks)[2] == (
        ":palm_tree: Tech-support is out of office until Fri 4 Dec 2026."
    )


def test_main_warns_but_succeeds_without_a_database(
    google: Google,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("DB_PATH", str(tmp_path / "nowhere.db"))
    google.rows(ROWS)
    code, out, err = run_main(capsys, "--out-of-office")
    assert code == 0 and len(check_blocks(json.loads(out))) == 4
    assert err.startswith("warning: out of office not checked")


def _unset(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("GCP_CREDENTIALS_PATH")
    return "GCP_CREDENTIALS_PATH is not set"


def _blank(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", "  ")
    return "GCP_CREDENTIALS_PATH is not set"


def _missing(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "nope.json"
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", str(path))
    return f"GCP_CREDENTIALS_PATH names {path}, which does not exist"


def _folder(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GCP_CREDENTIALS_PATH", str(tmp_path))
    return f"cannot read {tmp_path}"


def _not_json(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    text = key.path.read_text()[:-40]  # cut short
    path = other_key_file(tmp_path, monkeypatch, text)
    return f"{path} (GCP_CREDENTIALS_PATH) is not JSON"


def _a_list(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = other_key_file(tmp_path, monkeypatch, json.dumps([key.info]))
    return f"{path} (GCP_CREDENTIALS_PATH) is not a key file"


NOT_A_KEY = (
    "is not a service account key (it needs client_email and a valid private_key)"
)


def _key_with(**changes: object) -> Callable[[Key, Path, pytest.MonkeyPatch], str]:
    def setup(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
        info = {**key.info, **changes}
        info = {name: value for name, value in info.items() if value is not ...}
        other_key_file(tmp_path, monkeypatch, json.dumps(info))
        return NOT_A_KEY

    return setup


def _truncated_key(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    lines = key.info["private_key"].splitlines()
    pem = "\n".join([*lines[:12], lines[-1]]) + "\n"
    other_key_file(tmp_path, monkeypatch, json.dumps({**key.info, "private_key": pem}))
    return NOT_A_KEY


def _an_ec_key(key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))
    other_key_file(tmp_path, monkeypatch, json.dumps({**key.info, "private_key": pem}))
    return NOT_A_KEY


GARBAGE = "TOPSECRETgarbageNOTaKEY"
GARBAGE_PEM = f"-----BEGIN PRIVATE KEY-----\n{GARBAGE}\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    "setup",
    [
        _unset,
        _blank,
        _missing,
        _folder,
        _not_json,
        _a_list,
        _key_with(private_key=...),
        _key_with(client_email=...),
        _key_with(private_key=GARBAGE),
        _key_with(private_key=GARBAGE_PEM),
        _key_with(private_key=None),
        _key_with(private_key=12345),
        _truncated_key,
        _an_ec_key,
    ],
    ids=[
        "unset",
        "blank",
        "missing",
        "a-folder",
        "not-json",
        "a-list",
        "no-private-key",
        "no-client-email",
        "garbage-key",
        "garbage-pem",
        "null-key",
        "number-key",
        "truncated-key",
        "an-ec-key",
    ],
)
def test_main_fails_without_a_usable_key_file(
    google: Google,
    key: Key,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[Key, Path, pytest.MonkeyPatch], str],
):
    expected = setup(key, tmp_path, monkeypatch)
    message = failure(run_main(capsys), key)
    assert expected in message
    assert GARBAGE not in message
    assert google.mocked.requests == {}  # Google was not asked


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (
            400,
            {
                "payload": {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT Signature.",
                }
            },
            f"Google refused a token to the service account {EMAIL} "
            "(invalid_grant: Invalid JWT Signature.)",
        ),
        (
            401,
            {
                "payload": {
                    "error": "invalid_client",
                    "error_description": "The OAuth client was not found.",
                }
            },
            f"Google refused a token to the service account {EMAIL} "
            "(invalid_client: The OAuth client was not found.)",
        ),
        (
            400,
            {"payload": {"error": "invalid_scope"}},
            f"Google refused a token to the service account {EMAIL} (invalid_scope)",
        ),
        (
            503,
            {"payload": {}},
            f"Google refused a token to the service account {EMAIL} (HTTP 503)",
        ),
        (
            200,
            {"payload": {"token_type": "Bearer", "expires_in": 3599}},
            "Google's token service gave no access token",
        ),
        (
            502,
            {
                "body": "<html><title>502 Bad Gateway</title></html>",
                "content_type": "text/html",
            },
            "Google's token service answered with HTTP 502 and a body that is not "
            "JSON; try again later",
        ),
    ],
    ids=[
        "invalid-grant",
        "invalid-client",
        "no-description",
        "empty",
        "no-token",
        "html",
    ],
)
def test_main_fails_when_google_refuses_a_token(
    google: Google,
    capsys: pytest.CaptureFixture[str],
    status: int,
    answer: dict,
    expected: str,
):
    google.token(status, **answer)
    assert failure(run_main(capsys), google.key) == expected
    assert len(google.token_forms) == 1 and google.sheet_urls == []


@pytest.mark.parametrize(
    ("status", "answer", "cell_range", "expected"),
    [
        (
            404,
            {
                "code": 404,
                "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
            },
            RANGE,
            f"Google has no spreadsheet {SHEET_ID} "
            "(check the sheet id in the job config)",
        ),
        (
            403,
            {
                "code": 403,
                "message": "The caller does not have permission",
                "status": "PERMISSION_DENIED",
            },
            RANGE,
            f"the service account {EMAIL} may not read spreadsheet {SHEET_ID}: "
            "share the sheet with it",
        ),
        (
            400,
            {
                "code": 400,
                "message": "Unable to parse range: Nope!A1",
                "status": "INVALID_ARGUMENT",
            },
            "Nope!A1",
            "Google could not read range 'Nope!A1': Unable to parse range: Nope!A1",
        ),
        (
            429,
            {
                "code": 429,
                "message": "Quota exceeded for quota metric 'Read requests' and limit "
                "'Read requests per minute per user' of service "
                "'sheets.googleapis.com' for consumer 'project_number:123456'.",
                "status": "RESOURCE_EXHAUSTED",
            },
            RANGE,
            "Google Sheets is rate limiting the bot; try again in a minute",
        ),
        (
            401,
            {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected "
                "OAuth 2 access token, login cookie or other valid authentication "
                "credential.",
                "status": "UNAUTHENTICATED",
            },
            RANGE,
            "Google Sheets answered with HTTP 401: Request had invalid "
            "authentication credentials. Expected OAuth 2 access token, login "
            "cookie or other valid authentication credential.",
        ),
        (
            503,
            {
                "code": 503,
                "message": "The service is currently unavailable.",
                "status": "UNAVAILABLE",
            },
            RANGE,
            "Google Sheets answered with HTTP 503: "
            "The service is currently unavailable.",
        ),
    ],
    ids=["404", "403", "400-range", "429", "401", "503"],
)
def test_main_fails_when_the_sheet_cannot_be_read(
    google: Google,
    capsys: pytest.CaptureFixture[str],
    status: int,
    answer: dict,
    cell_range: str,
    expected: str,
):
    google.token()
    google.sheet(status, cell_range=cell_range, payload={"error": answer})
    message = failure(run_main(capsys, cell_range=cell_range), google.key)
    assert message == expected
    assert len(google.sheet_urls) == 1


def test_main_fails_on_a_server_error_page(
    google: Google, capsys: pytest.CaptureFixture[str]
):
    google.token()
    google.sheet(
        500,
        body="<!DOCTYPE html><html><title>Error 500 (Server Error)!!1</title></html>",
        content_type="text/html; charset=UTF-8",
    )
    assert failure(run_main(capsys), google.key) == (
        "Google Sheets answered with HTTP 500; try again later"
    )


def test_main_explains_a_404_page_that_is_not_json(
    google: Google, capsys: pytest.CaptureFixture[str]
):
    google.token()
    google.sheet(404, body="<html>Not Found</html>", content_type="text/html")
    assert failure(run_main(capsys), google.key).startswith(
        f"Google has no spreadsheet {SHEET_ID} "
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], "the rota range is empty"),
        ([["Week"], [serial(MON_23)]], "the rota's first row should name a date"),
    ],
    ids=["empty-range", "one-column"],
)
def test_main_fails_on_a_sheet_that_is_not_a_rota(
    google: Google, capsys: pytest.CaptureFixture[str], rows: list, expected: str
):
    google.rows(rows)
    assert expected in failure(run_main(capsys), google.key)


def test_main_fails_when_google_cannot_be_reached(
    google: Google, capsys: pytest.CaptureFixture[str]
):
    google.mocked.post(
        TOKEN_URL,
        exception=aiohttp.ClientConnectionError(
            "Cannot connect to host oauth2.googleapis.com:443 ssl:default"
        ),
    )
    assert failure(run_main(capsys), google.key) == (
        "a web request failed (Cannot connect to host oauth2.googleapis.com:443 "
        "ssl:default); try again later"
    )


def test_main_fails_when_the_sheets_connection_drops(
    google: Google, capsys: pytest.CaptureFixture[str]
):
    google.token()
    google.mocked.get(SHEETS_VALUES, exception=aiohttp.ServerDisconnectedError())
    message = failure(run_main(capsys), google.key)
    assert message.startswith("a web request failed (Server disconnected")


def test_main_fails_when_google_times_out(
    google: Google, capsys: pytest.CaptureFixture[str]
):
    google.token()
    google.mocked.get(SHEETS_VALUES, exception=TimeoutError())
    assert failure(run_main(capsys), google.key) == (
        "a web request timed out; try again later"
    )


@pytest.mark.parametrize(
    "argv",
    [
        [
            "--title",
            TITLE,
            "--sheet",
            SHEET_ID,
            "--range",
            RANGE,
            "--today",
            "27/11/2026",
        ],
        ["--title", TITLE, "--range", RANGE],
    ],
    ids=["bad-today", "no-sheet"],
)
def test_main_refuses_bad_arguments(
    google: Google, capsys: pytest.CaptureFixture[str], argv: list[str]
):
    with pytest.raises(SystemExit) as exit_:
        rota.main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().out == ""
    assert google.mocked.requests == {}


def test_main_says_when_the_shipped_placeholder_sheet_id_is_still_there(
    google: Google, capsys: pytest.CaptureFixture[str]
):
    placeholder = "REPLACE-WITH-THE-INBOX-ROTA-SHEET-ID"
    code = rota.main(["--title", TITLE, "--sheet", placeholder, "--range", RANGE])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        "error: this rota's spreadsheet is not set: put its id in the job's "
        "--sheet= in the job config\n"
    )
    assert google.mocked.requests == {}
