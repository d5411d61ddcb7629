"""The pool's attempts to connect: each failure said in one line, the last kept for readiness."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Self

import psycopg_pool
import structlog

from adapters.diagnosis import Diagnosis
from adapters.postgres.deadline import DeadlineConnection
from adapters.postgres.errors import diagnose
from adapters.postgres.primary import server_of
from application.throttle import Throttle

log = structlog.get_logger(__name__)


class ConnectWatch:
    """What the last attempt to connect ran into (None once one succeeds).

    psycopg_pool connects in the background and only logs its failures, over several lines and
    with the whole URL; the pool's `connection_class` (below) is how its attempts are seen. The
    same failure is logged at most once per `interval` seconds: a pool retries in several slots
    at once, and grows when requests wait, so one line per attempt could flood."""

    def __init__(self, url: str, interval: float = 5.0) -> None:
        self.url = url
        self.failure: Diagnosis | None = None
        #: called when a round trip met no answer in time, or found the server gone or
        #: read-only (the pool drops its idle connections: they went to the same server)
        self.on_lost: Callable[[], None] | None = None
        self._throttle = Throttle(interval)

    def failed(self, exc: BaseException) -> None:
        self.failure = diagnosis = diagnose(exc)
        if (extra := self._throttle.check(diagnosis.detail)) is not None:
            log.warning("database_connect_failed", error=diagnosis.line(self.url), **extra)

    def succeeded(self) -> None:
        if self.failure is not None:
            log.info("database_connected")
        self.failure = None

    def silent(self) -> None:
        """A connection of the pool was closed by its deadline: the server went silent."""
        if (extra := self._throttle.check("silent")) is not None:
            log.warning("database_silent", error="no answer from PostgreSQL in time: the "
                        "pool's connections are replaced", **extra)
        if self.on_lost is not None:
            self.on_lost()

    def gone(self, why: str, server: str) -> None:
        """A connection of the pool found its server gone or read-only (primary.py): after a
        failover or a switchover, the pool connects to whichever host is the primary now."""
        if (extra := self._throttle.check(why)) is not None:
            log.warning("database_server_lost", error=why, server=server,
                        action="the pool's connections are replaced", **extra)
        if self.on_lost is not None:
            self.on_lost()

    def connection_class(self) -> type[WatchedConnection]:
        """For the pool's `connection_class`: connections that report to this watch."""
        return type("WatchedConnection", (WatchedConnection,), {"watch": self})


class WatchedConnection(DeadlineConnection):
    watch: ClassVar[ConnectWatch]

    def deadline_missed(self) -> None:
        self.watch.silent()

    def server_gone(self, why: str) -> None:
        self.watch.gone(why, server_of(self))

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        try:
            conn = await super().connect(conninfo, **kwargs)
        except Exception as exc:
            cls.watch.failed(exc)
            raise
        cls.watch.succeeded()
        return conn


def watch_of(pool: psycopg_pool.AsyncConnectionPool[Any]) -> ConnectWatch | None:
    """The watch of a pool made by `make_pool`, if it has one."""
    made = pool.connection_class
    return made.watch if issubclass(made, WatchedConnection) else None
