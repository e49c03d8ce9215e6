"""Reading a Google Sheet as a service account: google-auth signs the token
request, aiohttp makes the calls."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from google.auth import crypt, jwt

from jobkit.script import JobError, read_json

CREDENTIALS_VARIABLE = "GCP_CREDENTIALS_PATH"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
SHEETS_URL = "https://sheets.googleapis.com/v4/spreadsheets"
TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class ServiceAccount:
    """A service account's email and signer, from its JSON key file."""

    def __init__(self, info: dict) -> None:
        try:
            self.email: str = info["client_email"]
            self.signer = crypt.RSASigner.from_service_account_info(info)
            self.signer.sign(b"can this key sign?")  # Google issues RSA keys only
        except (KeyError, ValueError, TypeError, AttributeError):
            # the message of these errors may quote the key: never show it
            raise JobError(
                f"the file named by {CREDENTIALS_VARIABLE} is not a service "
                "account key (it needs client_email and a valid private_key)"
            ) from None
        self.token_url: str = info.get("token_uri") or TOKEN_URL

    @classmethod
    def from_env(cls) -> ServiceAccount:
        path = os.environ.get(CREDENTIALS_VARIABLE, "").strip()
        if not path:
            raise JobError(
                f"{CREDENTIALS_VARIABLE} is not set: the bot needs a Google "
                "service account's key file to read the rota"
            )
        try:
            info = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JobError(
                f"{CREDENTIALS_VARIABLE} names {path}, which does not exist"
            ) from None
        except OSError as error:
            raise JobError(f"cannot read {path} ({error.strerror})") from None
        except ValueError:
            raise JobError(f"{path} ({CREDENTIALS_VARIABLE}) is not JSON") from None
        if not isinstance(info, dict):
            raise JobError(f"{path} ({CREDENTIALS_VARIABLE}) is not a key file")
        return cls(info)

    def assertion(self, scope: str, now: float | None = None) -> bytes:
        """A signed JWT asking for an access token with ``scope``."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.email,
            "scope": scope,
            "aud": self.token_url,
            "iat": issued,
            "exp": issued + 3600,
        }
        return jwt.encode(self.signer, claims)

    async def access_token(self, session: aiohttp.ClientSession, scope: str) -> str:
        form = {"grant_type": JWT_GRANT, "assertion": self.assertion(scope).decode()}
        async with session.post(self.token_url, data=form) as response:
            body = await read_json(response, "Google's token service")
        if response.status != 200 or not isinstance(body, dict):
            reason = _reason(body) or f"HTTP {response.status}"
            raise JobError(
                f"Google refused a token to the service account {self.email} ({reason})"
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise JobError("Google's token service gave no access token")
        return token


async def sheet_values(
    session: aiohttp.ClientSession,
    account: ServiceAccount,
    sheet_id: str,
    cell_range: str,
) -> list[list]:
    """The rows of ``cell_range``: unformatted values, dates as serial numbers."""
    token = await account.access_token(session, SHEETS_SCOPE)
    url = f"{SHEETS_URL}/{quote(sheet_id, safe='')}/values/{quote(cell_range, safe='')}"
    params = {
        "majorDimension": "ROWS",
        "valueRenderOption": "UNFORMATTED_VALUE",
        "dateTimeRenderOption": "SERIAL_NUMBER",
    }
    async with session.get(
        url, params=params, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        # an error page may not be JSON; its status says enough
        body = await read_json(response, "Google Sheets", required=response.ok)
    if response.status == 200 and isinstance(body, dict):
        values = body.get("values", [])
        return [row for row in values if isinstance(row, list)]
    reason = _reason(body)
    if response.status == 404:
        raise JobError(
            f"Google has no spreadsheet {sheet_id} "
            "(check the sheet id in the job config)"
        )
    if response.status == 403:
        raise JobError(
            f"the service account {account.email} may not read spreadsheet "
            f"{sheet_id}: share the sheet with it"
        )
    if response.status == 429:
        raise JobError("Google Sheets is rate limiting the bot; try again in a minute")
    if response.status == 400:
        raise JobError(f"Google could not read range {cell_range!r}: {reason}")
    detail = f": {reason}" if reason else "; try again later"
    raise JobError(f"Google Sheets answered with HTTP {response.status}{detail}")


def _reason(body: object) -> str:
    """The explanation in one of Google's error bodies."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):  # the APIs: {"error": {"code", "message", "status"}}
        return str(error.get("message") or error.get("status") or "")
    if isinstance(error, str):  # OAuth: {"error": "invalid_grant", ...}
        description = body.get("error_description")
        return f"{error}: {description}" if description else error
    return ""
