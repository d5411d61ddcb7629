"""Real PostgreSQL and RabbitMQ for the tests: from the environment, else from testcontainers.

Never silently skipped: with neither, the tests fail and say how to provide them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

HOW_TO = (
    "integration tests need a real PostgreSQL and RabbitMQ: set TASKS_TEST_DATABASE_URL "
    "(e.g. postgresql://postgres@127.0.0.1:5432/postgres) and TASKS_TEST_RABBITMQ_URL "
    "(e.g. amqp://guest:guest@127.0.0.1:5672/), or run a Docker engine so that "
    "testcontainers can start them"
)


#: vhosts made, and deleted, in one rabbitmqctl run
VHOSTS_AT_ONCE = 8


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@dataclass
class Services:
    """Admin URLs plus the means to stop/start/restart each service for chaos tests."""

    database_url: str
    rabbitmq_url: str
    broker_ctl: list[str] = field(default_factory=lambda: ["rabbitmqctl"])
    containers: list[Any] = field(default_factory=list)
    pg_restart: list[str] | None = None
    pg_stop: list[str] | None = None
    pg_start: list[str] | None = None
    _spare_vhosts: list[str] = field(default_factory=list, init=False, repr=False)
    _dropped_vhosts: list[str] = field(default_factory=list, init=False, repr=False)

    # -- RabbitMQ ---------------------------------------------------------------------------
    def rabbitmqctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.broker_ctl, *args], capture_output=True, text=True,
                              timeout=120, check=check)

    def new_vhost(self) -> str:
        """A fresh vhost and its URL; tests never share queues.

        Vhosts are made VHOSTS_AT_ONCE at a time and deleted as many at a time: each run of
        rabbitmqctl boots an Erlang VM (most of a second), and a run per vhost made and deleted
        added minutes to the suite."""
        if not self._spare_vhosts:
            self._spare_vhosts = [f"tasks-test-{uuid.uuid4().hex[:10]}"
                                  for _ in range(VHOSTS_AT_ONCE)]
            self._on_vhosts(self._spare_vhosts, make=True)
        name = self._spare_vhosts.pop()
        parts = urllib.parse.urlsplit(self.rabbitmq_url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(name, safe="")))

    def drop_vhost(self, url: str) -> None:
        """Deleted with the next VHOSTS_AT_ONCE - 1 dropped, or when the session ends."""
        self._dropped_vhosts.append(urllib.parse.unquote(urllib.parse.urlsplit(url).path[1:]))
        if len(self._dropped_vhosts) >= VHOSTS_AT_ONCE:
            self.drop_vhosts()

    def drop_vhosts(self) -> None:
        """Delete every vhost made, whether a test used it or not."""
        gone, self._dropped_vhosts = self._dropped_vhosts + self._spare_vhosts, []
        self._spare_vhosts = []
        if gone:
            self._on_vhosts(gone, make=False)

    def _on_vhosts(self, names: list[str], *, make: bool) -> None:
        """Make (with every permission for the URL's user) or delete `names` in one rabbitmqctl
        run, through `eval`; a broker where that fails gets one command per step instead."""
        user = urllib.parse.urlsplit(self.rabbitmq_url).username or "guest"
        binaries = ", ".join(f'<<"{name}">>' for name in names)
        if make:
            step = (f'ok = rabbit_vhost:add(V, <<"tests">>), '
                    f'ok = rabbit_auth_backend_internal:set_permissions(<<"{user}">>, V, '
                    f'<<".*">>, <<".*">>, <<".*">>, <<"tests">>)')
        else:
            step = 'rabbit_vhost:delete(V, <<"tests">>)'
        if (re.fullmatch(r"[\w.-]+", user)
                and self.rabbitmqctl("eval", f"[begin {step} end || V <- [{binaries}]].",
                                     check=False).returncode == 0):
            return
        for name in names:
            if make:
                self.rabbitmqctl("add_vhost", name)
                self.rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
            else:
                self.rabbitmqctl("delete_vhost", name, check=False)

    def new_user(self, vhost_url: str) -> tuple[str, str]:
        """A user with a known password and every permission on `vhost_url`'s vhost."""
        name, password = f"tasks-test-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
        vhost = urllib.parse.unquote(urllib.parse.urlsplit(vhost_url).path.lstrip("/"))
        self.rabbitmqctl("add_user", name, password)
        self.rabbitmqctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
        return name, password

    def drop_user(self, name: str) -> None:
        self.rabbitmqctl("delete_user", name, check=False)

    # -- PostgreSQL -------------------------------------------------------------------------
    def new_database(self, template: str | None = None) -> str:
        name = f"tasks_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
            conn.execute(query)
        return make_conninfo(self.database_url, dbname=name)

    def drop_database(self, url: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(str(name))))

    def restart_postgres(self) -> None:
        self._pg(self.pg_restart)

    def stop_postgres(self) -> None:
        self._pg(self.pg_stop)

    def start_postgres(self) -> None:
        self._pg(self.pg_start)

    @staticmethod
    def _pg(command: list[str] | None) -> None:
        if command is None:
            raise RuntimeError("no way to stop or start this PostgreSQL from the tests")
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def _local_pg(action: str) -> list[str] | None:
    """`pg_ctlcluster` for the machine's own cluster (Debian layout), if there is one."""
    if not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        return None
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", action]


@contextmanager
def provide_services() -> Iterator[Services]:
    db = os.environ.get("TASKS_TEST_DATABASE_URL")
    mq = os.environ.get("TASKS_TEST_RABBITMQ_URL")
    if db and mq:
        if not shutil.which("rabbitmqctl"):
            pytest.fail("TASKS_TEST_RABBITMQ_URL is set but rabbitmqctl is not on PATH: the "
                        "tests create a vhost each and need rabbitmqctl for it")
        services = Services(db, mq, pg_restart=_local_pg("restart"), pg_stop=_local_pg("stop"),
                            pg_start=_local_pg("start"))
        try:
            yield services
        finally:
            services.drop_vhosts()
        return
    if not docker_available():
        pytest.fail(HOW_TO, pytrace=False)
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as pg, \
            RabbitMqContainer("rabbitmq:3.13-alpine") as mq_container:
        params = mq_container.get_connection_params()
        mq_url = (f"amqp://guest:guest@{params.host}:{params.port}/")
        yield Services(
            pg.get_connection_url(),
            mq_url,
            broker_ctl=["docker", "exec", mq_container.get_wrapped_container().id, "rabbitmqctl"],
            containers=[pg, mq_container],
            pg_restart=["docker", "restart", pg.get_wrapped_container().id],
            # a stopped container may come back on another port: pausing keeps the address
            pg_stop=["docker", "pause", pg.get_wrapped_container().id],
            pg_start=["docker", "unpause", pg.get_wrapped_container().id],
        )
