"""`tasks` parses the client commands: options before or after, usage errors, light imports."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from entrypoints import cli
from entrypoints.client import parser as client

TASK = "01a21f4d-f8c0-7d76-8fd6-4dfbadcc6d71"


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[argparse.Namespace]:
    """What `tasks …` would run, without running it."""
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(client, "run", lambda args: seen.append(args) or 0)
    return seen


@pytest.mark.parametrize("argv", [
    ["--url", "http://h:1", "--api-key", "k", "--json", "show", TASK],
    ["show", TASK, "--url", "http://h:1", "--api-key", "k", "--json"],
    ["--json", "show", "--url", "http://h:1", TASK, "--api-key", "k"],
])
def test_the_connection_options_may_stand_before_or_after_the_command(
        parsed: list[argparse.Namespace], argv: list[str]) -> None:
    assert cli.main(argv) == 0
    args = parsed[0]
    assert (args.command, args.id, args.url, args.api_key, args.json) == (
        "show", TASK, "http://h:1", "k", True)


def test_left_out_they_are_unset_and_the_environment_decides_later(
        parsed: list[argparse.Namespace]) -> None:
    cli.main(["list", "--status", "new", "--status", "error"])
    args = parsed[0]
    assert (args.url, args.api_key, args.json, args.status, args.limit) == (
        None, None, False, ["new", "error"], 50)


def test_submit_takes_a_json_object_as_payload(parsed: list[argparse.Namespace]) -> None:
    cli.main(["submit", "Resize", "--payload", '{"w": 640}', "--wait", "--idempotency-key", "k"])
    args = parsed[0]
    assert (args.title, args.payload, args.wait, args.idempotency_key) == (
        "Resize", {"w": 640}, True, "k")


@pytest.mark.parametrize(("argv", "said"), [
    (["submit", "x", "--payload", "[1]"], "must be a JSON object"),
    (["submit", "x", "--payload", "{nope"], "not JSON"),
    (["show", "42"], "not a task id: '42'"),
    (["list", "--status", "done"], "invalid choice: 'done'"),
    (["list", "--limit", "0"], "not a whole number above 0"),
    (["prune", "--older-than", "-1"], "not a number of days above 0"),
    (["prune", "--older-than", "0"], "not a number of days above 0"),
    (["list", "--bogus"], "unrecognized arguments: --bogus"),
    (["watch"], "the following arguments are required: id"),
    (["--json", "migrate"], "options of the client commands"),
])
def test_a_usage_error_is_argparse_usage_and_exit_2(
        parsed: list[argparse.Namespace], capsys: pytest.CaptureFixture[str],
        argv: list[str], said: str) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tasks") and said in err
    assert parsed == []


def test_a_client_command_loads_no_part_of_the_service() -> None:
    """`tasks show X` starts fast: no psycopg, FastStream, Litestar or logging set-up (the
    command goes as far as checking --url, past every import of the client)."""
    code = (
        "import sys\n"
        "from entrypoints import cli\n"
        "cli.main(['--url', 'ftp://no.where', 'show', 'TASK'])\n"
        "heavy = {'psycopg', 'faststream', 'litestar', 'uvicorn', 'structlog', 'msgspec',\n"
        "         'adapters', 'application', 'domain', 'dependency_injector'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    ).replace("TASK", TASK)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.stdout == "[]\n", done.stderr
    assert done.stderr == "tasks: --url (or TASKS_URL) must look like http://host:port, not " \
        "'ftp://no.where'\n"
