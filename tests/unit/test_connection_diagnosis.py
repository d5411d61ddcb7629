"""A failed connection becomes one line: the setting, what happened, the fix; never a password."""

# The exception texts are those psycopg 3.3 and aio-pika 10 / aiormq 7 really raise (recorded
# against real servers; the integration and end-to-end tests produce each of them live).

from __future__ import annotations

import psycopg
import pytest
from aio_pika.exceptions import (
    AMQPConnectionError,
    ChannelPreconditionFailed,
    InvalidFrameError,
    ProbableAuthenticationError,
)

from adapters.diagnosis import scrub
from adapters.postgres.errors import diagnose as diagnose_postgres
from adapters.rabbitmq.errors import diagnose as diagnose_rabbitmq

PG_URL = "postgresql://postgres:s3cret@127.0.0.1:5499/tasks"
MQ_URL = "amqp://tasks:s3cret@127.0.0.1:5672/tasks-vhost"


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("missing \"=\" after \"mysql://u:s3cret@h:3306/db\" in connection info string",
         "mysql://u:s3cret@h:3306/db"),
        ("connection to postgresql://postgres:s3cret@h/x failed", "postgresql://postgres:s3cret@h/x"),
        ("host=h password=s3cret dbname=x", "host=h password=s3cret dbname=x"),
        ("host=h password='s3 cret' dbname=x", "host=h password='s3 cret' dbname=x"),
    ],
)
def test_no_password_survives_scrubbing(text: str, url: str) -> None:
    assert "s3cret" not in scrub(text)
    assert "s3 cret" not in scrub(text)
    assert "***" in scrub(text)
    assert "s3cret" not in scrub(url)


def test_a_url_without_a_password_is_left_as_it_is() -> None:
    assert scrub("postgresql://postgres@127.0.0.1:5432/x") == "postgresql://postgres@127.0.0.1:5432/x"


PG_CASES = [
    # (exception, readiness summary, words of the line, permanent)
    (psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5499 failed: FATAL:  '
        'password authentication failed for user "postgres"'),
     "authentication failed", ['authentication failed for user "postgres"', "password"], True),
    (psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5499 failed: '
        "fe_sendauth: no password supplied"),
     "authentication failed", ["asks for a password and none is given"], True),
    (psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5999 failed: Connection '
        "refused\n\tIs the server running on that host and accepting TCP/IP connections?"),
     "connection refused", ["connection refused at 127.0.0.1:5999", "running"], False),
    (psycopg.OperationalError(
        "failed to resolve host 'no-such-host.invalid': [Errno -2] Name or service not known"),
     "unknown host", ["unknown host 'no-such-host.invalid'"], False),
    (psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '
        'database "no_such_db" does not exist'),
     'database "no_such_db" does not exist', ["tasks migrate"], True),
    (psycopg.ProgrammingError(
        'missing "=" after "mysql://postgres:s3cret@127.0.0.1:3306/db" in connection info '
        "string\n"),
     "not a PostgreSQL URL", ["postgresql://user:password@host:5432/dbname"], True),
    (psycopg.errors.ConnectionTimeout("connection timeout expired"),
     "no answer (timed out)", ["reachable"], False),
]


@pytest.mark.parametrize(("exc", "summary", "words", "permanent"), PG_CASES)
def test_a_postgres_connection_error_is_one_line_naming_the_setting_and_the_fix(
    exc: Exception, summary: str, words: list[str], permanent: bool
) -> None:
    diagnosis = diagnose_postgres(exc)
    line = diagnosis.line(PG_URL)

    assert line.startswith("TASKS_DATABASE_URL=postgresql://postgres:***@127.0.0.1:5499/tasks: ")
    assert "\n" not in line
    assert "s3cret" not in line
    assert "s3cret" not in diagnosis.short()
    assert diagnosis.summary == summary
    for word in words:
        assert word in line
    assert diagnosis.permanent is permanent
    assert ("will not fix itself" in line) is permanent


def test_readiness_names_the_reason_and_the_setting_but_no_host_or_user() -> None:
    diagnosis = diagnose_postgres(PG_CASES[0][0])
    assert diagnosis.short() == "authentication failed (check TASKS_DATABASE_URL)"
    refused = diagnose_postgres(PG_CASES[2][0])
    assert refused.short() == "connection refused (check TASKS_DATABASE_URL)"


MQ_CASES = [
    (ProbableAuthenticationError(
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details "
        "see the broker logfile."),
     "authentication failed", ['authentication failed for user "tasks"'], True),
    (InvalidFrameError(
        "Expected one of ['Connection.OpenOk'], got <Connection.Close object at 0x7f0c0>"),
     'vhost "tasks-vhost" does not exist, or this user may not use it',
     ['vhost "tasks-vhost" does not exist', "rabbitmqctl add_vhost tasks-vhost"], True),
    (AMQPConnectionError(111, "Connect call failed ('127.0.0.1', 5672)"),
     "connection refused", ["connection refused at 127.0.0.1:5672"], False),
    (AMQPConnectionError(-2, "Name or service not known"),
     "unknown host", ["unknown host", "host name"], False),
    (AMQPConnectionError("Server connection unexpectedly closed. Read 0 bytes but 1 bytes "
                         "expected"),
     "closed during the handshake", ["AMQP"], False),
    (TimeoutError(), "no answer (timed out)", ["127.0.0.1:5672"], False),
    (ChannelPreconditionFailed(
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'tasks.create' in "
        "vhost 'tasks-vhost': received 'quorum' but current is 'classic'"),
     "tasks.create is a classic queue; a cluster needs a quorum queue",
     ["docs/clusters.md", "name one node only"], True),
]


@pytest.mark.parametrize(("exc", "summary", "words", "permanent"), MQ_CASES)
def test_a_rabbitmq_connection_error_is_one_line_naming_the_setting_and_the_fix(
    exc: Exception, summary: str, words: list[str], permanent: bool
) -> None:
    diagnosis = diagnose_rabbitmq(exc, MQ_URL)
    line = diagnosis.line(MQ_URL)

    assert line.startswith("TASKS_RABBITMQ_URL=amqp://tasks:***@127.0.0.1:5672/tasks-vhost: ")
    assert "\n" not in line
    assert "s3cret" not in line
    assert diagnosis.summary == summary
    for word in words:
        assert word in line
    assert ("will not fix itself" in line) is permanent


def test_the_default_vhost_is_named_as_rabbitmq_names_it() -> None:
    diagnosis = diagnose_rabbitmq(MQ_CASES[1][0], "amqp://guest:guest@localhost:5672/")
    assert 'vhost "/" does not exist' in diagnosis.summary
