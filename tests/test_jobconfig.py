"""The job configuration file: loading, validation messages, command matching."""

from pathlib import Path

import pytest

from bennettbot.jobconfig import (
    JobConfigError,
    SlackCommand,
    load_job_config,
    parse_job_config,
)
from bennettbot.settings import SHIPPED_JOB_CONFIG

FIXTURES = Path(__file__).parent / "fixtures" / "jobconfig"


# --- validation: one fixture per rule ------------------------------------------

# fixture name -> one entry per expected problem line:
# (namespace, the offending key as the line names it, substrings that explain
# the rule)
INVALID = {
    "unknown_key_namespace": [("test", "colour", ["unknown key"])],
    "unknown_key_job": [("test", "jobs.hello.report_stdot", ["unknown key"])],
    "unknown_key_command": [("test", "slack[0] ('hello').delay", ["unknown key"])],
    "params_mismatch": [
        (
            "test",
            "slack[0] ('hello [who]')",
            ["params [who]", "differ", "template params [name]", "'hello_name'"],
        )
    ],
    "suppression_params": [
        (
            "op",
            "slack[1] ('deploy suppress from [start_at]')",
            ["schedule_suppression", "exactly two params", "[start_at]"],
        )
    ],
    "cancel_with_params": [
        (
            "op",
            "slack[1] ('deploy cancel [reason]')",
            ["cancel_job", "takes no params"],
        )
    ],
    "missing_job_type": [
        (
            "test",
            "slack[1] ('goodbye').job_type",
            ["'goodbye'", "does not exist", "[test.jobs]"],
        )
    ],
    "bad_report_format": [
        (
            "test",
            "jobs.hello.report_format",
            ["invalid value 'html'", "'text'", "'blocks'", "'code'", "'file'"],
        )
    ],
    "bad_action": [
        (
            "test",
            "slack[0] ('hello').action",
            [
                "invalid value 'run_job'",
                "'schedule_job'",
                "'cancel_job'",
                "'schedule_suppression'",
                "'cancel_suppression'",
            ],
        )
    ],
    "duplicate_commands": [
        ("test", "slack[2] ('Read  Poem')", ["is the same as 'read poem'"]),
        ("test", "slack[3] ('hello [who]')", ["is the same as 'hello [name]'"]),
    ],
    "underscore_namespace": [
        ("my_team", "namespace name", ["lowercase letters, digits and '-'", "'_'"])
    ],
}


def test_every_invalid_fixture_is_tested():
    on_disk = {p.stem for p in FIXTURES.glob("*.toml")}
    assert on_disk == {*INVALID, "invalid_toml", "valid"}


def load_problems(name: str) -> tuple[Path, list[str]]:
    path = FIXTURES / f"{name}.toml"
    with pytest.raises(JobConfigError) as raised:
        load_job_config(path)
    assert str(raised.value) == "\n".join(raised.value.problems)
    return path, raised.value.problems


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_fixture_names_file_namespace_and_key(name):
    path, problems = load_problems(name)
    expected = INVALID[name]
    assert len(problems) == len(expected), problems
    for line, (namespace, key, explanations) in zip(problems, expected, strict=True):
        assert "\n" not in line
        assert line.startswith(f"{path}: [{namespace}]: "), line
        assert key in line, line
        for text in explanations:
            assert text in line, (text, line)


def test_invalid_fixture_lines_are_exact_for_a_sample():
    """The shape of a line, in full, for one nested key and one command key."""
    path, problems = load_problems("unknown_key_job")
    assert problems == [f"{path}: [test]: jobs.hello.report_stdot: unknown key"]
    path, problems = load_problems("missing_job_type")
    assert problems == [
        f"{path}: [test]: slack[1] ('goodbye').job_type: job 'goodbye' does not "
        "exist in [test.jobs]"
    ]


def test_invalid_toml_names_file_and_line():
    path, problems = load_problems("invalid_toml")
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: invalid TOML: ")
    assert "line 3" in problems[0]


def test_missing_file_cannot_be_read(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(JobConfigError) as raised:
        load_job_config(path)
    assert raised.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_a_directory_cannot_be_read(tmp_path):
    with pytest.raises(JobConfigError) as raised:
        load_job_config(tmp_path)
    [line] = raised.value.problems
    assert line.startswith(f"{tmp_path}: cannot read: ")


def test_problems_in_several_namespaces_are_all_reported(tmp_path):
    raw = {
        "a_b": {},
        "one": {"jobs": {"x": {"run_args_template": "echo", "colour": 1}}},
        "two": {
            "slack": [{"command": "go", "action": "schedule_job", "job_type": "y"}]
        },
    }
    with pytest.raises(JobConfigError) as raised:
        parse_job_config(raw, tmp_path / "jobs.toml")
    problems = raised.value.problems
    assert len(problems) == 3
    assert "[a_b]" in problems[0]
    assert "[one]: jobs.x.colour: unknown key" in problems[1]
    assert "[two]: slack[0] ('go').job_type: job 'y' does not exist" in problems[2]


@pytest.mark.parametrize(
    ("table", "key", "text"),
    [
        (
            {"remote": {"host": "h", "user": "u", "shell": "sh"}},
            "remote.shell",
            "unknown key",
        ),
        ({"remote": {"user": "u"}}, "remote.host", "required"),
        ({"remote": {"host": "h", "user": "u", "port": 0}}, "remote.port", "1"),
        ({"fabfile": "ftp://example.org/f.py"}, "fabfile", "http"),
        ({"jobs": {"j": {}}}, "jobs.j.run_args_template", "required"),
        (
            {"jobs": {"j": {"run_args_template": ""}}},
            "jobs.j.run_args_template",
            "at least 1 character",
        ),
        (
            {"jobs": {"j": {"run_args_template": "x", "timeout_seconds": 0}}},
            "jobs.j.timeout_seconds",
            "greater than 0",
        ),
    ],
)
def test_other_invalid_values_name_namespace_and_key(tmp_path, table, key, text):
    path = tmp_path / "jobs.toml"
    with pytest.raises(JobConfigError) as raised:
        parse_job_config({"ns": table}, path)
    [line] = raised.value.problems
    assert line.startswith(f"{path}: [ns]: {key}: ")
    assert text in line


def test_negative_delay_is_invalid(tmp_path):
    raw = {
        "ns": {
            "jobs": {"j": {"run_args_template": "echo"}},
            "slack": [
                {
                    "command": "go",
                    "action": "schedule_job",
                    "job_type": "j",
                    "delay_seconds": -1,
                }
            ],
        }
    }
    with pytest.raises(JobConfigError) as raised:
        parse_job_config(raw, tmp_path / "jobs.toml")
    [line] = raised.value.problems
    assert "[ns]: slack[0] ('go').delay_seconds: " in line


# Mistakes that once escaped as crashes or were ignored: each must be a
# JobConfigError naming file, namespace and key.
def test_repeated_param_is_a_problem(tmp_path):
    raw = {
        "ns": {
            "jobs": {"j": {"run_args_template": "echo {x}"}},
            "slack": [
                {"command": "go [x] [x]", "action": "schedule_job", "job_type": "j"}
            ],
        }
    }
    with pytest.raises(JobConfigError, match=r"\[ns\]: slack\[0\].*repeats"):
        parse_job_config(raw, tmp_path / "jobs.toml")


def test_malformed_template_is_a_problem(tmp_path):
    raw = {
        "ns": {
            "jobs": {"j": {"run_args_template": "echo }"}},
            "slack": [{"command": "go", "action": "schedule_job", "job_type": "j"}],
        }
    }
    with pytest.raises(JobConfigError, match=r"\[ns\]: jobs\.j\.run_args_template"):
        parse_job_config(raw, tmp_path / "jobs.toml")


def test_name_key_in_a_namespace_is_unknown(tmp_path):
    with pytest.raises(JobConfigError, match=r"\[ns\]: name: unknown key"):
        parse_job_config({"ns": {"name": "other"}}, tmp_path / "jobs.toml")


# --- loading valid files ------------------------------------------------------


def test_shipped_config_loads():
    config = load_job_config(SHIPPED_JOB_CONFIG)
    assert config.path == SHIPPED_JOB_CONFIG
    assert list(config.namespaces) == [
        "test",
        "report",
        "techsupport",
        "inbox",
    ]
    test = config.namespaces["test"]
    assert test.default_channel == "#tech"
    assert not test.restricted
    assert {c.command for c in test.slack} >= {"hello", "hello [name]"}
    assert config.namespaces["report"].restricted
    for namespace in ("report", "techsupport", "inbox"):
        jobs = config.namespaces[namespace].jobs.values()
        assert {job.report_format for job in jobs} == {"blocks"}
    # what the deployment guide promises: specifics in the config, not the code
    board = config.namespaces["report"].jobs["board"].run_args_template
    assert "--org=" in board
    rota = config.namespaces["techsupport"].jobs["rota_report"].run_args_template
    assert "--sheet=" in rota and "--range=" in rota and "--out-of-office" in rota


@pytest.fixture(scope="module")
def valid():
    return load_job_config(FIXTURES / "valid.toml")


def test_valid_namespaces(valid):
    assert valid.path == FIXTURES / "valid.toml"
    assert list(valid.namespaces) == ["test", "op", "ci-2"]
    test, op, ci = (valid.namespaces[n] for n in ("test", "op", "ci-2"))
    assert (test.name, op.name, ci.name) == ("test", "op", "ci-2")
    assert test.description == "Some commands to test things work"
    assert not test.restricted
    assert test.default_channel == "#tech"
    assert test.fabfile is None
    assert test.remote is None
    assert op.description == "Operations"
    assert op.restricted
    assert op.default_channel == "#team-rap"
    assert op.fabfile == "https://example.org/fabfile.py"
    # defaults of an empty namespace header
    assert (ci.description, ci.restricted, ci.default_channel) == ("", False, "")


def test_valid_remote(valid):
    remote = valid.namespaces["op"].remote
    assert remote is not None
    assert (remote.host, remote.user, remote.port, remote.cwd) == (
        "prod.example.org",
        "deploy",
        2222,
        "/srv/app",
    )
    converted = remote.to_remote()
    assert (converted.host, converted.user, converted.port, converted.cwd) == (
        "prod.example.org",
        "deploy",
        2222,
        "/srv/app",
    )


def test_valid_jobs(valid):
    jobs = valid.namespaces["test"].jobs
    assert set(jobs) == {"hello", "hello_name", "blocks", "quiet"}
    hello = jobs["hello"]
    assert hello.report_stdout
    assert hello.report_format == "text"  # default
    assert hello.report_success  # default
    assert hello.timeout_seconds == 3600  # default
    assert hello.params == frozenset()
    named = jobs["hello_name"]
    assert named.run_args_template == "python jobs.py --name={name}"
    assert named.timeout_seconds == 600
    assert named.params == frozenset({"name"})
    assert jobs["blocks"].report_format == "blocks"
    quiet = jobs["quiet"]
    assert not quiet.report_stdout  # default
    assert not quiet.report_success
    assert quiet.timeout_seconds == 1.5
    op_jobs = valid.namespaces["op"].jobs
    assert op_jobs["deploy"].report_format == "code"
    assert op_jobs["deploy"].timeout_seconds == 1800
    assert op_jobs["logs"].report_format == "file"


def test_valid_commands(valid):
    test_commands = {c.command: c for c in valid.namespaces["test"].slack}
    assert test_commands["hello"].delay_seconds == 0  # default
    assert test_commands["hello"].help == "say hello to the world"
    assert test_commands["hello [name]"].params == ("name",)
    assert test_commands["quiet later"].delay_seconds == 60
    op = [(c.command, c.action, c.job_type) for c in valid.namespaces["op"].slack]
    assert op == [
        ("deploy", "schedule_job", "deploy"),
        ("deploy cancel", "cancel_job", "deploy"),
        (
            "deploy suppress from [start_at] to [end_at]",
            "schedule_suppression",
            "deploy",
        ),
        ("deploy cancel suppression", "cancel_suppression", "deploy"),
        ("deploy logs", "schedule_job", "logs"),
    ]
    suppress = valid.namespaces["op"].slack[2]
    assert suppress.params == ("start_at", "end_at")  # in order: start, then end
    assert valid.namespaces["ci-2"].slack[0].help == ""  # default


def test_loaded_config_is_frozen(valid):
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        valid.namespaces["test"].jobs["hello"].report_stdout = False  # type: ignore[misc]


# --- job types ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_type", "namespace", "name"),
    [
        ("test_hello", "test", "hello"),
        ("test_hello_name", "test", "hello_name"),
        ("op_deploy", "op", "deploy"),
        ("ci-2_run", "ci-2", "run"),
    ],
)
def test_job_type_splits_at_the_first_underscore(valid, job_type, namespace, name):
    job = valid.job(job_type)
    assert job is not None
    assert job.type == job_type
    assert job.namespace.name == namespace
    assert job.name == name
    assert job.definition is valid.namespaces[namespace].jobs[name]


@pytest.mark.parametrize(
    "job_type", ["test", "test_", "test_nope", "nope_hello", "test_hello_", "hello"]
)
def test_unknown_job_types(valid, job_type):
    assert valid.job(job_type) is None


# --- command matching -----------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    return load_job_config(SHIPPED_JOB_CONFIG)


@pytest.mark.parametrize(
    ("text", "command", "args"),
    [
        ("test hello", "hello", {}),
        ("test hello Bob", "hello [name]", {"name": "Bob"}),
        ("test hello Bob Smith", "hello [name]", {"name": "Bob Smith"}),
        ("TEST Hello BoB", "hello [name]", {"name": "BoB"}),
        ("Test HELLO", "hello", {}),
        ("test read poem", "read poem", {}),
        ("test Read Poem", "read poem", {}),
    ],
)
def test_shipped_commands_match(shipped, text, command, args):
    found = shipped.match(text)
    assert found is not None
    assert found.command.command == command
    assert found.namespace.name == text.split()[0].lower()
    assert dict(found.args) == args


@pytest.mark.parametrize(
    "text",
    [
        "",
        "test",
        "nope hello",
        "hello",
        "test read poem please",  # text after a complete command
        "test bad job now",
        "test read",
        "test hellothere",
        "test hello ",  # [name] needs at least one character
        "testhello",
        "showlogs tail stdout test_hello/20260105-090000",  # built in, not here
    ],
)
def test_shipped_commands_do_not_match(shipped, text):
    assert shipped.match(text) is None


def test_suppression_command_matches_two_params(valid):
    found = valid.match("op deploy suppress from 10:00 to 11:30")
    assert found is not None
    assert found.command.action == "schedule_suppression"
    assert found.command.job_type == "deploy"
    assert dict(found.args) == {"start_at": "10:00", "end_at": "11:30"}
    assert valid.match("op deploy suppress from 10:00") is None
    assert valid.match("op deploy suppress from 10:00 to") is None


def test_cancel_commands_match_without_args(valid):
    cancel = valid.match("op deploy cancel")
    assert cancel is not None
    assert (cancel.command.action, dict(cancel.args)) == ("cancel_job", {})
    unsuppress = valid.match("op Deploy Cancel Suppression")
    assert unsuppress is not None
    assert unsuppress.command.action == "cancel_suppression"
    assert valid.match("op deploy cancel now") is None


def test_hyphenated_namespace_matches(valid):
    found = valid.match("CI-2 run Main")
    assert found is not None
    assert dict(found.args) == {"branch": "Main"}


def make_command(command: str) -> SlackCommand:
    return SlackCommand(command=command, action="schedule_job", job_type="j")


@pytest.mark.parametrize(
    ("command", "text", "args"),
    [
        ("hello [name]", "hello x", {"name": "x"}),
        ("hello [name]", "HELLO Mixed Case", {"name": "Mixed Case"}),
        ("hello [name]", "hello ", None),
        ("hello [name]", "hello", None),
        ("hello [name]", "hi x", None),
        ("hello", "hello x", None),
        ("hello", "HeLLo", {}),
        ("a.b [x]", "aXb y", None),  # literal text is not a pattern
        ("a.b [x]", "A.B y", {"x": "y"}),
        (
            "from [start] to [end]",
            "from 9:00 to 10:00",
            {"start": "9:00", "end": "10:00"},
        ),
        ("from [start] to [end]", "from to to to", {"start": "to", "end": "to"}),
        ("run  [x]", "run y", {"x": "y"}),  # spaces in the command fold
    ],
)
def test_slack_command_match(command, text, args):
    assert make_command(command).match(text) == args


def test_adjacent_params_are_a_problem(tmp_path):
    raw = {
        "ns": {
            "jobs": {"j": {"run_args_template": "echo {x} {y}"}},
            "slack": [
                {"command": "go [x][y]", "action": "schedule_job", "job_type": "j"}
            ],
        }
    }
    with pytest.raises(JobConfigError, match=r"literal text between them"):
        parse_job_config(raw, tmp_path / "jobs.toml")


def test_positional_template_fields_are_a_problem(tmp_path):
    raw = {"ns": {"jobs": {"j": {"run_args_template": "echo {}"}}}}
    with pytest.raises(JobConfigError, match=r"jobs\.j\.run_args_template"):
        parse_job_config(raw, tmp_path / "jobs.toml")


@pytest.mark.parametrize("field", ["{name!r}", "{name!s}", "{name:>20}", "{name:.3}"])
def test_conversions_and_format_specs_are_refused(tmp_path, field):
    # they would reshape an argument after it was quoted
    raw = {"ns": {"jobs": {"j": {"run_args_template": f"echo {field}"}}}}
    with pytest.raises(JobConfigError, match=r"not a plain named field"):
        parse_job_config(raw, tmp_path / "jobs.toml")


@pytest.mark.parametrize("name", ["x/../../escaped", "a b", "", "é"])
def test_job_names_cannot_leave_the_logs_folder(tmp_path, name):
    raw = {"ns": {"jobs": {name: {"run_args_template": "true"}}}}
    with pytest.raises(JobConfigError, match=r"a job name may only have"):
        parse_job_config(raw, tmp_path / "jobs.toml")


def test_the_most_specific_command_wins_whatever_the_order(tmp_path):
    raw = {
        "op": {
            "default_channel": "#ops",
            "jobs": {"deploy": {"run_args_template": "deploy {env}"}},
            "slack": [
                {
                    "command": "deploy [env]",
                    "action": "schedule_job",
                    "job_type": "deploy",
                },
                {
                    "command": "deploy suppress from [a] to [b]",
                    "action": "schedule_suppression",
                    "job_type": "deploy",
                },
            ],
        }
    }
    config = parse_job_config(raw, tmp_path / "jobs.toml")
    found = config.match("op deploy suppress from 10:00 to 11:00")
    assert found.command.action == "schedule_suppression"
    assert found.args == {"a": "10:00", "b": "11:00"}
    assert config.match("op deploy prod").args == {"env": "prod"}


@pytest.mark.parametrize(
    "template",
    [
        'echo "{name}"',
        "echo '{name}'",
        'deploy --msg="hello {name}"',
        'x="$(echo {name})"',
    ],
)
def test_a_param_inside_quotes_is_refused(tmp_path, template):
    raw = {"t": {"jobs": {"hello": {"run_args_template": template}}}}
    with pytest.raises(JobConfigError) as raised:
        parse_job_config(raw, tmp_path / "jobs.toml")
    [problem] = raised.value.problems
    assert problem.startswith(
        f"{tmp_path / 'jobs.toml'}: [t]: jobs.hello.run_args_template:"
    )
    assert "{name} is inside quotes" in problem


@pytest.mark.parametrize(
    "template",
    ["echo {name}", 'echo "x" {name}', "echo 'it''s' {name}", 'echo \\"{name}'],
)
def test_a_bare_param_next_to_quotes_is_fine(tmp_path, template):
    raw = {"t": {"jobs": {"hello": {"run_args_template": template}}}}
    assert parse_job_config(raw, tmp_path / "jobs.toml").job("t_hello")


def test_a_deploy_job_needs_a_default_channel(tmp_path):
    raw = {"web": {"jobs": {"deploy": {"run_args_template": "true"}}}}
    with pytest.raises(JobConfigError) as raised:
        parse_job_config(raw, tmp_path / "jobs.toml")
    [problem] = raised.value.problems
    assert problem.startswith(f"{tmp_path / 'jobs.toml'}: [web]: default_channel:")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.org/fabfile.py", True),
        ("http://127.0.0.1:8080/fabfile.py", True),
        ("http://localhost/fabfile.py", True),
        ("http://example.org/fabfile.py", False),
        ("ftp://example.org/fabfile.py", False),
    ],
)
def test_fabfiles_come_over_https_or_from_this_machine(tmp_path, url, ok):
    raw = {"t": {"fabfile": url}}
    if ok:
        assert parse_job_config(raw, tmp_path / "j.toml").namespaces["t"].fabfile
    else:
        with pytest.raises(JobConfigError, match="fabfile"):
            parse_job_config(raw, tmp_path / "j.toml")


def test_env_names_are_checked(tmp_path):
    raw = {"t": {"env": ["DB_PATH", "not a name"]}}
    with pytest.raises(JobConfigError, match=r"\[t\]: env\[1\]|\[t\]: env.1"):
        parse_job_config(raw, tmp_path / "j.toml")
