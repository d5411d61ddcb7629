"""`tasks` parses the client commands: options before or after, usage errors, light imports."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime

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
    (["submit", "x", "--run-at", "tomorrow"], "not a time: 'tomorrow'"),
    (["submit", "x", "--delay", "-5"], "not a delay of 0 s to a year"),
    (["submit", "x", "--delay", "2y"], "not a delay of 0 s to a year"),
    (["submit", "x", "--delay", "366d"], "not a delay of 0 s to a year"),
    (["submit", "x", "--delay", "5", "--run-at", "2026-12-24T18:00Z"], "not allowed with"),
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


def test_submit_takes_a_start_time_with_or_without_an_offset_or_a_delay(
        parsed: list[argparse.Namespace]) -> None:
    cli.main(["submit", "x", "--run-at", "2026-12-24T18:00:00+01:00"])
    cli.main(["submit", "x", "--run-at", "2026-12-24T17:00Z"])
    cli.main(["submit", "x", "--run-at", "2026-12-24 18:00"])
    cli.main(["submit", "x", "--delay", "90"])
    cli.main(["submit", "x", "--delay", "1.5min"])
    cli.main(["submit", "x", "--delay", "2h"])
    assert [a.run_at for a in parsed[:2]] == ["2026-12-24T18:00:00+01:00",
                                              "2026-12-24T17:00:00+00:00"]
    local = datetime(2026, 12, 24, 18, 0).astimezone()
    assert parsed[2].run_at == local.isoformat()  # no offset: this machine's local time
    assert datetime.fromisoformat(parsed[2].run_at).utcoffset() is not None
    assert [a.delay for a in parsed[3:]] == [90.0, 90.0, 7200.0]


def test_pause_and_resume_take_a_reason(parsed: list[argparse.Namespace]) -> None:
    cli.main(["pause", "--reason", "disk swap"])
    cli.main(["resume"])
    assert [(a.command, a.reason) for a in parsed] == [("pause", "disk swap"), ("resume", None)]


@pytest.mark.parametrize(("argv", "said"), [
    (["submit"], "give a TITLE, or --file F"),
    (["submit", "x", "--file", "tasks.jsonl"], "give a TITLE or --file F, not both"),
    (["submit", "--file", "-", "--delay", "5", "--wait"],
     "--delay, --wait cannot go with --file: each line carries its own fields"),
    (["submit", "--file", "-", "--payload", "{}"], "--payload cannot go with --file"),
])
def test_submit_needs_a_title_or_a_file_and_a_file_brings_its_own_fields(
        capsys: pytest.CaptureFixture[str], argv: list[str], said: str) -> None:
    """Checked before anything is read or sent (no service at this --url)."""
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--url", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tasks submit") and f"error: {said}" in err


def test_the_help_of_submit_says_how_a_key_names_each_batch() -> None:
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "submit", "--help"],
                          capture_output=True, text=True, timeout=30)
    text = " ".join(done.stdout.split())
    assert "batch n is sent with the key KEY/n" in text, done.stdout
    assert "'-' reads standard input" in text
