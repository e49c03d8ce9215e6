"""Mocks the internet for a job subprocess in an end-to-end test.

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``. When
``BENNETTBOT_HTTP_REPLAY`` names a JSON file, every aiohttp request of the
process is answered by aioresponses from that file, and nothing leaves the
machine. Each entry: ``{"method", "url", "status", "payload", "headers"}``,
answered in order for the same method and URL (``"url_pattern"``, a regular
expression, may stand for ``"url"``). With ``BENNETTBOT_HTTP_RECORD``
set, the requests seen are appended to that file as JSON lines.
"""

import atexit
import json
import os
import re

if os.environ.get("BENNETTBOT_HTTP_REPLAY"):
    from aioresponses import CallbackResult, aioresponses

    _RECORD = os.environ.get("BENNETTBOT_HTTP_RECORD")

    def _answer(entry: dict):
        def callback(url, **kwargs):
            if _RECORD:
                seen = {
                    "method": entry["method"],
                    "url": str(url),
                    "headers": dict(kwargs.get("headers") or {}),
                    "json": kwargs.get("json"),
                }
                with open(_RECORD, "a", encoding="utf-8") as file:
                    file.write(json.dumps(seen) + "\n")
            return CallbackResult(
                status=entry.get("status", 200),
                payload=entry.get("payload"),
                headers=entry.get("headers"),
            )

        return callback

    _mock = aioresponses()
    _mock.start()
    atexit.register(_mock.stop)
    with open(os.environ["BENNETTBOT_HTTP_REPLAY"], encoding="utf-8") as _file:
        for _entry in json.load(_file):
            _url = _entry.get("url") or re.compile(_entry["url_pattern"])
            _mock.add(_url, _entry["method"], callback=_answer(_entry))
