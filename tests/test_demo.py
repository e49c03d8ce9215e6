"""The terminal demo, in this process, fed a script as its standard input."""

from __future__ import annotations

import io


async def test_a_scripted_demo_session(clean_env, tmp_path):
    from bennettbot.demo import run_demo

    script = tmp_path / "script.txt"
    script.write_text(
        "\n".join(
            [
                "@bennettbot test hello Bob",
                "",
                "dm status",
                "#random @bennettbot test hello Ann",
                "guest @bennettbot showlogs tail stdout 1",
                "@bennettbot test greet Cy",
                "press Run",
                "is tech-support around?",
                "quit",
            ]
        )
        + "\n"
    )
    out = io.StringIO()
    with script.open() as stdin:
        assert await run_demo(stdin=stdin, stdout=out) == 0
    screen = out.getvalue()
    assert "[#general, in a thread] bennettbot: Hello Bob!" in screen
    assert "[#random, in a thread] bennettbot: Hello Ann!" in screen
    assert "[DM, in a thread] bennettbot: " in screen
    assert "job logs are only for members of the team" in screen
    assert "confirmed by <@U0ALICE>" in screen  # the press edited the question
    assert "Hello Cy!" in screen
    assert "[#general] bennettbot reacted :sos:" in screen
    assert screen.endswith("\nbye\n")
