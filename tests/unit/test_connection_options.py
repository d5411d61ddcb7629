"""The deadlines every connection is opened with, and what a user's URL keeps of its own."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from adapters.postgres.deadline import connect_options
from adapters.rabbitmq.broker import with_heartbeat
from adapters.timeouts import (
    AMQP_HEARTBEAT_SECONDS,
    PG_CONNECT_SECONDS,
    PG_IDLE_IN_TRANSACTION_MS,
    PG_STATEMENT_TIMEOUT_MS,
)


def test_postgres_connections_get_a_connect_timeout_keepalives_and_server_timeouts() -> None:
    options = connect_options("postgresql://u:p@db:5432/tasks")
    assert options["connect_timeout"] == PG_CONNECT_SECONDS
    assert options["keepalives"] == 1
    assert options["tcp_user_timeout"] > 0
    assert options["options"] == (
        f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} "
        f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS}")


def test_options_of_the_url_are_kept_and_the_server_timeouts_added() -> None:
    options = connect_options("host=db dbname=tasks options='-c search_path=app'")
    assert options["options"].startswith("-c search_path=app -c statement_timeout=")


def test_a_url_psycopg_cannot_read_is_left_for_the_connect_to_report() -> None:
    assert connect_options("not a url at all = =")["connect_timeout"] == PG_CONNECT_SECONDS


def test_the_amqp_url_asks_for_the_heartbeat_unless_it_names_its_own() -> None:
    added = with_heartbeat("amqp://guest:guest@mq:5672/tasks?name=api")
    parts = urlsplit(added)
    assert parse_qs(parts.query) == {"name": ["api"], "heartbeat": [str(AMQP_HEARTBEAT_SECONDS)]}
    assert parts.path == "/tasks" and parts.netloc == "guest:guest@mq:5672"
    own = "amqp://guest:guest@mq:5672/?heartbeat=30"
    assert with_heartbeat(own) == own
