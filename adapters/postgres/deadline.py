"""Client-side deadlines on PostgreSQL connections: no round trip waits on a silent server.

psycopg's asynchronous waits have no deadline of their own, and a server-side statement_timeout
does nothing when packets are dropped; so every round trip gets one here. Cancelling a query
does not wait on the network either: psycopg would send a cancel request and wait for the answer
(seconds more, on a silent server); the connection is closed instead, and the pool replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, waiting
from psycopg.abc import PQGen
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from adapters.timeouts import (
    PG_CONNECT_SECONDS,
    PG_IDLE_IN_TRANSACTION_MS,
    PG_KEEPALIVES_COUNT,
    PG_KEEPALIVES_IDLE_SECONDS,
    PG_KEEPALIVES_INTERVAL_SECONDS,
    PG_ROUND_TRIP_SECONDS,
    PG_STATEMENT_TIMEOUT_MS,
    PG_TCP_USER_TIMEOUT_MS,
)

RV = TypeVar("RV")
#: a deadline (time.monotonic()) that round trips in this context must also meet
_until: ContextVar[float | None] = ContextVar("pg_deadline", default=None)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Round trips made inside end by `seconds` from now (or by an earlier deadline)."""
    until = time.monotonic() + seconds
    outer = _until.get()
    token = _until.set(until if outer is None else min(outer, until))
    try:
        yield
    finally:
        _until.reset(token)


def connect_options(url: str) -> dict[str, Any]:
    """Connection parameters for every connection the service opens to PostgreSQL: connect
    timeout, TCP keepalives and user timeout, and the server-side timeouts (added to any
    `options` the URL has)."""
    try:
        given = str(conninfo_to_dict(url).get("options") or "")
    except psycopg.ProgrammingError:  # a bad URL is reported when connecting
        given = ""
    server = (f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} "
              f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS}")
    return {
        "connect_timeout": PG_CONNECT_SECONDS,
        "keepalives": 1,
        "keepalives_idle": PG_KEEPALIVES_IDLE_SECONDS,
        "keepalives_interval": PG_KEEPALIVES_INTERVAL_SECONDS,
        "keepalives_count": PG_KEEPALIVES_COUNT,
        "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
        "options": f"{given} {server}".strip(),
    }


class DeadlineConnection(AsyncConnection[Any]):
    """Each round trip ends within PG_ROUND_TRIP_SECONDS (or the context's `within`), or the
    connection is closed and an OperationalError raised. A wait given its own timeout (LISTEN's
    `notifies`) keeps it."""

    async def wait(self, gen: PQGen[RV], interval: float = 0.1,
                   timeout: float | None = None) -> RV:  # noqa: ASYNC109 - psycopg's signature
        if timeout is not None:
            return await super().wait(gen, interval, timeout)
        budget = PG_ROUND_TRIP_SECONDS
        if (until := _until.get()) is not None:
            budget = max(0.0, min(budget, until - time.monotonic()))
        try:
            return await waiting.wait_async(gen, self.pgconn.socket, interval=interval,
                                            timeout=budget)
        except psycopg.errors._WaitTimeout:
            self.pgconn.finish()  # its answer, if it ever comes, would be read by no one
            self.deadline_missed()
            raise psycopg.OperationalError(
                f"no answer from PostgreSQL within {budget:g}s") from None
        except asyncio.CancelledError:
            if self.pgconn.transaction_status == TransactionStatus.ACTIVE:
                self.pgconn.finish()
            raise

    def deadline_missed(self) -> None:
        """Called once a deadline has closed this connection (a pool may act on it)."""
