"""Two bot processes connected at once (a dokku deploy's overlap) on one
database: Slack may deliver an event, or its retry, to either, and together
they act once per event."""

from __future__ import annotations

import asyncio
import sys

from bennettbot.emulator import SlackEmulator
from bennettbot.emulator.harness import service_environment
from bennettbot.store import Store
from conftest import wait_until
from processes import DISPATCHER_ENV, kill_processes, stop_processes


async def start(tmp_path, role: str, env: dict[str, str], name: str):
    with (tmp_path / f"{name}.log").open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bennettbot",
            "--role",
            role,
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )


def the_mention(slack: SlackEmulator, ts: str):
    [envelope] = [
        e
        for e in slack.socket.envelopes.values()
        if e.payload.get("event", {}).get("type") == "app_mention"
        and e.payload["event"].get("ts") == ts
    ]
    return envelope


async def test_an_event_and_its_retry_to_the_other_bot_run_the_job_once(tmp_path):
    async with SlackEmulator() as slack:
        env = service_environment(
            tmp_path,
            **{**DISPATCHER_ENV, "SLACK_BOT_TOKEN": slack.bot_token},
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_SIGNING_SECRET="signing-secret-value",
            SLACK_API_URL=slack.api_url,
        )
        processes = {"dispatcher": await start(tmp_path, "dispatcher", env, "d")}
        try:
            processes["old"] = await start(
                tmp_path, "bot", env | {"BOT_CHECK_FILE": str(tmp_path / "old")}, "old"
            )
            await wait_until((tmp_path / "old").exists, 20)
            processes["new"] = await start(
                tmp_path, "bot", env | {"BOT_CHECK_FILE": str(tmp_path / "new")}, "new"
            )
            await wait_until((tmp_path / "new").exists, 20)
            await slack.wait_for(lambda: len(slack.socket.open_connections()) == 2)

            asked = await slack.post("alice", "general", "<@U0BOT> test hello Ann")
            first = the_mention(slack, asked.ts)
            await slack.wait_for_ack(first.envelope_id)
            reply = await slack.wait_for_reply("C0GENERAL", asked.ts, timeout=15)
            assert reply.text == "Hello Ann!\n"
            # Slack's retry comes later (a waiting job would absorb an early
            # one), and to the other connection
            again = await slack.redeliver(first.envelope_id, elsewhere=True)
            assert again.connection != first.connection
            await slack.wait_for_ack(again.envelope_id)

            # The bot that got the original goes (end of the overlap); the
            # next mention reaches the one that got the retry, which handles
            # its events in order: once this one is answered, the retry has
            # been dealt with.
            got_first = (
                "new"
                if first.connection == max(c.id for c in slack.socket.connections)
                else "old"
            )
            processes[got_first].terminate()
            await processes[got_first].wait()
            probe = await slack.post("alice", "general", "<@U0BOT> test read poem")
            await slack.wait_for_reply("C0GENERAL", probe.ts, timeout=15)
            # whatever was queued has run: nothing waits or runs any more
            store = await Store.open(tmp_path / "bot.db")
            try:
                async with asyncio.timeout(15):
                    while await store.list_jobs():
                        await asyncio.sleep(0.02)
                runs = [r.type for r in await store.runs()]
            finally:
                await store.close()
            await stop_processes(processes.values())
        finally:
            await kill_processes(processes.values())
        started = [
            c.params["text"]
            for c in slack.calls_to("chat.postMessage")
            if c.params.get("text", "").endswith("about to start")
        ]
        hellos = [m for m in slack.replies("C0GENERAL", asked.ts) if "Hello" in m.text]
    assert started.count("Command `test_hello_name` about to start") == 1
    assert sorted(runs) == ["test_hello_name", "test_read_poem"]
    assert len(hellos) == 1
