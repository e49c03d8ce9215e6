"""No argument can inject a command: quoted arguments reach the job verbatim."""

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bennettbot.models import Outcome, Remote, RunSpec
from bennettbot.runners import (
    BadArgument,
    LocalRunner,
    render_command,
    template_params,
)
from sshservers import (  # noqa: F401 (fixtures)
    HOST,
    InProcessSSHServer,
    SSHKeys,
    ssh_keys_fixture,
    ssh_runner_fixture,
    ssh_server_fixture,
)

TEMPLATE = "printf '%s' {arg}"
MARKER = "pwned"  # what an injected command would create in the job's folder

NASTY = [
    "",
    " ",
    "'",
    '"',
    "\\",
    "'\\''",
    f"; touch {MARKER}",
    f"&& touch {MARKER}",
    f"|| touch {MARKER}",
    f"| touch {MARKER}",
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f"'; touch {MARKER}; '",
    f'"; touch {MARKER}; "',
    f"\ntouch {MARKER}\n",
    f"\r\ntouch {MARKER}",
    f"> {MARKER}",
    f"< /etc/passwd > {MARKER}",
    f"& touch {MARKER} &",
    "$HOME ${PATH} $((1+1)) ~ * ? [a-z]",
    "!! !$ {a,b}",
    "-n",
    "--",
    "%s %d %%",
    "é ü 漢字 🎉 \u200b \u202e",
    "\t\x01\x1b[31m\x7f",
    "x" * 5000,
]

arguments = st.one_of(
    st.sampled_from(NASTY),
    # Any text a Slack message can carry: no NUL, no lone surrogates.
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    st.lists(st.sampled_from([*NASTY, "a", "'", "$", "`"])).map("".join),
)


def property_settings(max_examples: int) -> settings:
    # Examples share the test's folder (and server): a marker any of them
    # created would fail the example that created it, or the next one.
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@property_settings(max_examples=100)
@given(argument=arguments)
@example(argument=f"$(touch {MARKER})")
async def test_local_job_receives_the_argument_verbatim(tmp_path, work, argument):
    spec = RunSpec(
        run_id=1,
        job_type="test_quoting",
        command=render_command(TEMPLATE, {"arg": argument}),
        cwd=work,
        log_dir=tmp_path / "logs" / uuid.uuid4().hex,
        timeout_seconds=30,
    )

    result = await LocalRunner().run(spec)

    assert result.outcome == Outcome.SUCCEEDED, spec.stderr_path.read_text()
    assert spec.stdout_path.read_bytes() == argument.encode()
    assert not (work / MARKER).exists()


@property_settings(max_examples=40)
@given(argument=arguments)
@example(argument=f"'; touch {MARKER}; '")
async def test_remote_job_receives_the_argument_verbatim(
    tmp_path, work, ssh_server, ssh_runner, argument
):
    spec = RunSpec(
        run_id=1,
        job_type="test_quoting",
        command=render_command(TEMPLATE, {"arg": argument}),
        cwd=str(work),
        log_dir=tmp_path / "logs" / uuid.uuid4().hex,
        timeout_seconds=30,
        remote=Remote(host=HOST, user="bot", port=ssh_server.port, cwd=str(work)),
    )

    result = await ssh_runner.run(spec)

    assert result.outcome == Outcome.SUCCEEDED, spec.stderr_path.read_text()
    assert spec.stdout_path.read_bytes() == argument.encode()
    assert not (work / MARKER).exists()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\x00b", "contains a NUL character"),
        ("\x00", "contains a NUL character"),
        ("ab\udc80", "is not valid text"),
        ("\ud800" + "x" * 100_000, "is not valid text"),
    ],
)
def test_unpassable_arguments_are_refused_without_echoing_them(value, problem):
    with pytest.raises(BadArgument) as raised:
        render_command("echo {name} {other}", {"other": "fine", "name": value})

    message = str(raised.value)
    assert "'name'" in message
    assert problem in message
    assert len(message) < 200
    assert isinstance(raised.value, ValueError)


def test_a_missing_argument_is_refused():
    with pytest.raises(BadArgument, match="no value given for parameter 'name'"):
        render_command("echo {name}", {})


def test_arguments_are_quoted_into_the_template():
    assert render_command(
        "python jobs.py --name={name} --n={n}", {"name": "Ann O'Neil", "n": "3"}
    ) == ("python jobs.py --name='Ann O'\"'\"'Neil' --n=3")


def test_literal_braces_stay():
    assert render_command("awk '{{print}}' {f}", {"f": "x y"}) == "awk '{print}' 'x y'"


def test_template_params():
    assert template_params("python jobs.py --name={name} --to={to}") == {"name", "to"}
    assert template_params("echo {{not_a_param}} {x}") == {"x"}
    assert template_params("python jobs.py") == frozenset()
