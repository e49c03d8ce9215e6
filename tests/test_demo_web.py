"""The web demo's server: its page, its JSON and what it refuses."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bennettbot.demo_web import page_app


async def client_for(slack) -> TestClient:
    client = TestClient(TestServer(page_app(slack)))
    await client.start_server()
    return client


async def test_the_page_and_its_assets_come_from_package_data(slack):
    client = await client_for(slack)
    try:
        page = await client.get("/")
        assert page.status == 200 and 'label for="composer-text">Message<' in (
            await page.text()
        )
        for name, kind in (("demo.js", "text/javascript"), ("demo.css", "text/css")):
            asset = await client.get(f"/static/{name}")
            assert asset.status == 200 and asset.content_type == kind
        for bad in ("/static/..%2Fdemo_web.py", "/static/secret.py", "/static/x.js"):
            assert (await client.get(bad)).status == 404
        assert (await client.get("/files/F0NOPE")).status == 404
    finally:
        await client.close()


async def test_posting_as_a_person_reaches_the_workspace(slack):
    client = await client_for(slack)
    try:
        said = await client.post(
            "/api/say",
            json={"as": "alice", "channel": "C0RANDOM", "text": "hi @bennettbot"},
        )
        assert said.status == 200
        [message] = slack.messages("random")
        assert message.text == "hi <@U0BOT>"
        state = await (await client.get("/api/state?as=alice")).json()
        [random] = [c for c in state["channels"] if c["name"] == "#random"]
        assert random["messages"][0]["text"] == "hi <@U0BOT>"
        assert state["users"]["U0BOT"] == "bennettbot"
    finally:
        await client.close()


async def test_bad_requests_are_refused_with_a_reason(slack):
    client = await client_for(slack)
    try:
        cases = [
            ({"as": "mallory", "channel": "C0GENERAL", "text": "x"}, "as:"),
            ({"as": "alice", "channel": "C0NOPE", "text": "x"}, "channel"),
            ({"as": "alice", "channel": "C0GENERAL", "text": " "}, "text"),
            ({"as": "alice", "channel": "C0GENERAL", "text": "x" * 5000}, "text"),
            ([1, 2], "JSON object"),
        ]
        for body, reason in cases:
            answer = await client.post("/api/say", json=body)
            assert answer.status == 400 and reason in await answer.text(), body
        bad = await client.post("/api/say", data=b"{nope")
        assert bad.status == 400
        press = {"as": "alice", "channel": "C0GENERAL", "ts": "1.2", "action_id": "x"}
        assert (await client.post("/api/press", json=press)).status == 400
        assert (await client.get("/api/state?as=bob")).status == 400
        assert slack.messages("general") == []
    finally:
        await client.close()


async def test_the_event_stream_says_changed(slack):
    client = await client_for(slack)
    try:
        async with client.get("/api/events") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            assert await stream.content.readline() == b"data: changed\n"
            await stream.content.readline()
            await slack.post("alice", "random", "something happened")
            assert await stream.content.readline() == b"data: changed\n"
    finally:
        await client.close()
