"""Processes behind their own proxies to PostgreSQL and RabbitMQ, and what to ask the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import psycopg

from tests.support.processes import Proc, Stack, eventually, free_port
from tests.support.proxy import Proxy


@dataclass
class Linked:
    """A process whose every connection to PostgreSQL (`pg`) and RabbitMQ (`mq`) goes through
    a proxy of its own; `ready` is its readiness URL."""

    proc: Proc
    pg: Proxy
    mq: Proxy
    ready: str
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = self.proc.pid

    @property
    def worker_like(self) -> str:
        """A LIKE pattern for the worker ids of this process (host-pid-suffix)."""
        return f"%-{self.pid}-%"


class Proxies:
    """Every proxy a test started; all stopped at its end."""

    def __init__(self) -> None:
        self.started: list[Proxy] = []

    def pair(self, stack: Stack) -> tuple[Proxy, Proxy, dict[str, str]]:
        pg = Proxy.in_front_of(stack.env["TASKS_DATABASE_URL"]).start()
        mq = Proxy.in_front_of(stack.env["TASKS_RABBITMQ_URL"]).start()
        self.started += [pg, mq]
        return pg, mq, {"TASKS_DATABASE_URL": pg.url_for(stack.env["TASKS_DATABASE_URL"]),
                        "TASKS_RABBITMQ_URL": mq.url_for(stack.env["TASKS_RABBITMQ_URL"])}

    def api(self, stack: Stack) -> Linked:
        pg, mq, urls = self.pair(stack)
        proc = stack.api(**urls)
        return Linked(proc, pg, mq, f"{stack.base_url}/health/ready")

    def worker(self, stack: Stack) -> Linked:
        pg, mq, urls = self.pair(stack)
        port = free_port()
        proc = stack.worker(TASKS_WORKER_HTTP_PORT=str(port), **urls)
        return Linked(proc, pg, mq, f"http://127.0.0.1:{port}/health/ready")

    def stop(self) -> None:
        for proxy in self.started:
            proxy.stop()


@contextmanager
def proxies() -> Iterator[Proxies]:
    made = Proxies()
    try:
        yield made
    finally:
        made.stop()


async def readiness(url: str) -> int | None:
    """The status of a readiness URL, or None when it does not answer within 5 s."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.get(url)).status_code
    except httpx.HTTPError:
        return None


async def turns(url: str, status: int, within: float, what: str) -> float:
    """Wait until `url` answers `status`; returns how long that took."""
    began = time.monotonic()

    async def check() -> bool:
        return await readiness(url) == status

    await eventually(check, within, f"{what} to answer {status}", every=0.5)
    return time.monotonic() - began


class Timeline:
    """Marks printed with the seconds since the start (shown when a test fails, or with -s)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def mark(self, what: str) -> float:
        seconds = time.monotonic() - self._start
        print(f"{seconds:6.1f}s  {what}")
        return seconds


def db_now(db: psycopg.Connection) -> datetime:
    return db.execute("SELECT now()").fetchone()[0]


def held_by(db: psycopg.Connection, linked: Linked) -> int:
    return db.execute("SELECT count(*) FROM tasks WHERE status = 'in_progress' "
                      "AND lease_owner LIKE %s", (linked.worker_like,)).fetchone()[0]


def recovered_from(db: psycopg.Connection, linked: Linked) -> int:
    """Claims of this worker that were taken back after their lease expired."""
    return db.execute("SELECT count(*) FROM task_history WHERE from_status = 'in_progress' "
                      "AND to_status = 'new' AND worker LIKE %s", (linked.worker_like,)
                      ).fetchone()[0]


def finished_by(db: psycopg.Connection, linked: Linked, since: datetime) -> int:
    return db.execute("SELECT count(*) FROM task_history WHERE to_status IN ('completed', "
                      "'error') AND worker LIKE %s AND at > %s",
                      (linked.worker_like, since)).fetchone()[0]


def undispatched(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM dispatch_outbox").fetchone()[0]
