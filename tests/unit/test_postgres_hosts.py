"""Several hosts in TASKS_DATABASE_URL: the primary is asked for, and a failure says what each
host answered, in one line and without the password."""

# The exception texts are those psycopg 3.3 raises with libpq 15 (recorded against the tests'
# own primary and standby, tests/support/pgcluster.py).

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from adapters.diagnosis import scrub
from adapters.postgres.deadline import connect_options
from adapters.postgres.errors import diagnose
from adapters.postgres.primary import primary_options, wants_primary
from entrypoints.settings import load_settings

HOSTS = "postgresql://tasks:s3cret@10.0.0.5:5432,10.0.0.6:5432/tasks"
ATTEMPTS = "\nMultiple connection attempts failed. All failures were:\n"
REFUSED = ("- host: '127.0.0.1', port: '39341', hostaddr: '127.0.0.1': connection failed: "
           'connection to server at "127.0.0.1", port 39341 failed: Connection refused\n'
           "\tIs the server running on that host and accepting TCP/IP connections?")
READ_ONLY = ("- host: '127.0.0.1', port: '47807', hostaddr: '127.0.0.1': connection failed: "
             'connection to server at "127.0.0.1", port 47807 failed: session is read-only')
MISSING = ("- host: '127.0.0.1', port: '38649', hostaddr: '127.0.0.1': connection failed: "
           'connection to server at "127.0.0.1", port 38649 failed: FATAL:  database '
           '"nosuchdb" does not exist')


def failed(last: str, *attempts: str) -> psycopg.OperationalError:
    return psycopg.OperationalError(f"connection failed: {last}{ATTEMPTS}" + "\n".join(attempts))


def test_several_hosts_ask_for_the_primary_unless_the_url_says_otherwise() -> None:
    assert primary_options(HOSTS) == {"target_session_attrs": "read-write"}
    assert primary_options(HOSTS + "?target_session_attrs=any") == {}
    assert primary_options("postgresql://h1:5432/tasks") == {}
    assert primary_options("host=h1,h2 port=5432,5433 dbname=tasks") == {
        "target_session_attrs": "read-write"}
    assert primary_options("mysql://nonsense") == {}


def test_only_a_url_that_asks_for_the_primary_drops_read_only_servers() -> None:
    assert wants_primary(HOSTS)
    assert wants_primary("postgresql://h1/tasks?target_session_attrs=primary")
    assert not wants_primary(HOSTS + "?target_session_attrs=any")
    assert not wants_primary("postgresql://h1/tasks")


def test_every_connection_of_a_multi_host_url_asks_for_the_primary() -> None:
    assert connect_options(HOSTS)["target_session_attrs"] == "read-write"
    assert "target_session_attrs" not in connect_options("postgresql://h1/tasks")


def test_settings_take_a_multi_host_url_as_given(tmp_path: Path) -> None:
    url = HOSTS + "?target_session_attrs=read-write"
    settings = load_settings(environ={"TASKS_DATABASE_URL": url}, dotenv=tmp_path / ".env")
    assert settings.database_url == url


def test_the_password_of_a_multi_host_url_is_scrubbed() -> None:
    assert scrub(HOSTS) == "postgresql://tasks:***@10.0.0.5:5432,10.0.0.6:5432/tasks"


def test_no_primary_among_the_hosts_says_what_each_one_answered() -> None:
    diagnosis = diagnose(failed('connection to server at "127.0.0.1", port 47807 failed: '
                                "session is read-only", REFUSED, READ_ONLY))
    line = diagnosis.line(HOSTS)

    assert diagnosis.summary == "no primary among the hosts"
    assert "127.0.0.1:39341 connection refused, 127.0.0.1:47807 read-only (a standby?)" in line
    assert line.startswith("TASKS_DATABASE_URL=postgresql://tasks:***@10.0.0.5:5432,")
    assert "\n" not in line
    assert not diagnosis.permanent


def test_no_host_answering_names_each_host() -> None:
    second = REFUSED.replace("39341", "39342")
    diagnosis = diagnose(failed('connection to server at "127.0.0.1", port 39342 failed: '
                                "Connection refused", REFUSED, second))
    assert diagnosis.summary == "no host answered"
    assert "127.0.0.1:39341 connection refused, 127.0.0.1:39342 connection refused" in (
        diagnosis.detail)


def test_a_missing_database_on_the_primary_is_said_as_with_one_host() -> None:
    diagnosis = diagnose(failed('connection to server at "127.0.0.1", port 38649 failed: '
                                'FATAL:  database "nosuchdb" does not exist', REFUSED, MISSING))
    assert diagnosis.summary == 'database "nosuchdb" does not exist'
    assert diagnosis.permanent


@pytest.mark.parametrize("words", ["session is read-only", "server is in hot standby mode"])
def test_one_host_that_takes_no_writes_is_said_so(words: str) -> None:
    diagnosis = diagnose(psycopg.OperationalError(
        f'connection failed: connection to server at "127.0.0.1", port 47807 failed: {words}'))
    assert diagnosis.summary == "the server takes no writes"
    assert "127.0.0.1:47807 takes no writes" in diagnosis.detail
