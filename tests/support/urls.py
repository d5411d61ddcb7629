"""URLs that cannot work, each in one particular way, for the tests of what a user is told."""

from __future__ import annotations

import urllib.parse

from psycopg.conninfo import make_conninfo

from tests.support.processes import free_port

#: The password every wrong URL carries: it must never appear in what the service says.
SECRET = "s3cret-never-shown"


def with_login(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{urllib.parse.quote(user)}:{urllib.parse.quote(password)}@{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def with_vhost(url: str, vhost: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(vhost, safe="")))


def postgres_refused() -> str:
    return f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/tasks"


def postgres_unknown_host() -> str:
    return f"postgresql://postgres:{SECRET}@no-such-host.invalid:5432/tasks"


def postgres_wrong_password(port: int) -> str:
    """For a server from tests.support.refusing_postgres."""
    return f"postgresql://tasks:{SECRET}@127.0.0.1:{port}/tasks"


def postgres_missing_database(admin_url: str) -> str:
    return make_conninfo(admin_url, dbname="tasks_no_such_database")


def postgres_missing_role(admin_url: str) -> str:
    return make_conninfo(admin_url, user="tasks_no_such_role", password=SECRET)


def rabbitmq_refused() -> str:
    return f"amqp://guest:{SECRET}@127.0.0.1:{free_port()}/"
