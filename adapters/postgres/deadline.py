"""Client-side deadlines on PostgreSQL connections: no round trip waits on a silent server.

psycopg's asynchronous waits have no deadline of their own, and a server-side statement_timeout
does nothing when packets are dropped; so every round trip gets one here, through psycopg's
public methods. A round trip that misses it is ended by hanging up under libpq (its socket is
shut down: libpq reads an end of file at once), never by cancelling psycopg's wait, which would
send the server a cancel request and wait for the answer (seconds more, on a silent server).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncCursor, AsyncPipeline
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import Row

from adapters.eager import eager_task
from adapters.postgres.primary import primary_options
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

if TYPE_CHECKING:
    from psycopg.abc import Params, Query, QueryNoTemplate  # (QueryNoTemplate: psycopg 3.3)

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
    timeout (for each host of a multi-host URL), TCP keepalives and user timeout, the
    server-side timeouts (added to any `options` the URL has), and the primary among several
    hosts (primary.py)."""
    try:
        given = str(conninfo_to_dict(url).get("options") or "")
    except psycopg.ProgrammingError:  # a bad URL is reported when connecting
        given = ""
    server = (f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} "
              f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS}")
    return {
        **primary_options(url),
        "connect_timeout": PG_CONNECT_SECONDS,
        "keepalives": 1,
        "keepalives_idle": PG_KEEPALIVES_IDLE_SECONDS,
        "keepalives_interval": PG_KEEPALIVES_INTERVAL_SECONDS,
        "keepalives_count": PG_KEEPALIVES_COUNT,
        "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
        "options": f"{given} {server}".strip(),
    }


def _budget() -> float:
    """Seconds the next round trip may take: the deadline, or what `within` leaves of it."""
    if (until := _until.get()) is None:
        return PG_ROUND_TRIP_SECONDS
    return max(0.0, min(PG_ROUND_TRIP_SECONDS, until - time.monotonic()))


def _settled(trip: asyncio.Future[Any]) -> None:
    """A hung-up round trip's own error is not news: the caller gets the deadline's."""
    if not trip.cancelled():
        trip.exception()


class DeadlineConnection(AsyncConnection[Any]):
    """Each round trip ends within PG_ROUND_TRIP_SECONDS (or the context's `within`), or the
    connection is closed and an OperationalError raised. Bounded: `commit`, `rollback`,
    entering and leaving `pipeline()`, and the cursor's calls (DeadlineCursor), which
    `execute` goes through. LISTEN's `notifies` keeps the timeout it is given."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        # given here rather than set on the connection: tracing wraps the factory it is given
        kwargs.setdefault("cursor_factory", DeadlineCursor)
        return await super().connect(conninfo, **kwargs)

    async def commit(self) -> None:
        await self.round_trip(super().commit())

    async def rollback(self) -> None:
        await self.round_trip(super().rollback())

    @contextlib.asynccontextmanager
    async def pipeline(self) -> AsyncIterator[AsyncPipeline]:
        mode = super().pipeline()
        pipeline = await self.round_trip(mode.__aenter__())
        try:
            yield pipeline
        except BaseException as exc:
            if not await self.round_trip(mode.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            await self.round_trip(mode.__aexit__(None, None, None))

    async def round_trip(self, step: Coroutine[Any, Any, RV]) -> RV:
        """`step` within the deadline, in a task of its own once it waits (adapters/eager.py):
        neither the deadline nor the caller's cancellation ever reaches psycopg's wait; either
        hangs up instead."""
        trip = eager_task(step)
        if trip.done():  # nothing to wait for (a pipelined statement, say)
            try:
                return trip.result()
            except psycopg.Error as exc:
                await self._failed(exc)
                raise
        budget = _budget()
        loop = asyncio.get_running_loop()
        # a bare future and a timer, not asyncio.wait: this runs for every round trip
        ended = loop.create_future()  # the trip's end or the deadline, whichever comes first

        def end(_: object = None) -> None:
            if not ended.done():
                ended.set_result(None)

        trip.add_done_callback(end)
        timer = loop.call_later(budget, end)
        try:
            await ended
        except asyncio.CancelledError:
            await self._hang_up(trip)
            raise
        finally:
            timer.cancel()
        if not trip.done():
            await self._hang_up(trip)
            self.deadline_missed()
            raise psycopg.OperationalError(f"no answer from PostgreSQL within {budget:.2g}s")
        try:
            return trip.result()
        except psycopg.Error as exc:
            await self._failed(exc)
            raise

    async def _failed(self, exc: psycopg.Error) -> None:
        """A server that hung up, or that refuses writes (SQLSTATE 25006: the service opens no
        read-only transaction, so the server is the primary no longer), is reported; the
        read-only one's connection is closed, so that no pool hands it out again."""
        if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
            self.server_gone("the server refuses writes: it is not the primary (any more)")
            await self.close()
        elif self.broken:
            self.server_gone("the server closed the connection")

    async def _hang_up(self, trip: asyncio.Future[Any]) -> None:
        """End `trip` at once, without a word to the server, and close the connection: its
        late answer, if one ever comes, is read by no one, and the pool replaces it."""
        if trip.done():
            _settled(trip)
            return
        trip.add_done_callback(_settled)
        # Shut down, not closed: the descriptor stays libpq's, and stays registered with the
        # event loop until psycopg's wait, woken by the end of file, lets go of it.
        with contextlib.suppress(psycopg.Error, OSError), \
                socket.fromfd(self.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as copy:
            copy.shutdown(socket.SHUT_RDWR)  # (of a copy of the descriptor: any family will do)
        await asyncio.wait((trip,))
        await self.close()

    def deadline_missed(self) -> None:
        """Called once a deadline has closed this connection (a pool may act on it)."""

    def server_gone(self, why: str) -> None:
        """Called once a round trip found the server gone or read-only (a pool may act on it:
        its other connections went to the same server)."""


class DeadlineCursor(AsyncCursor[Row]):
    """The cursor of a DeadlineConnection: statements, and fetches that wait for the server
    (in pipeline mode, results come when fetched), end within the round-trip deadline.
    Not bounded, and not used: `stream`, `copy`, `results`, iterating over rows."""

    async def execute(  # type: ignore[override]  # t-string queries: none in this service
        self, query: QueryNoTemplate, params: Params | None = None, *,
        prepare: bool | None = None, binary: bool | None = None,
    ) -> Self:
        return await self._trips.round_trip(
            super().execute(query, params, prepare=prepare, binary=binary))

    async def executemany(self, query: Query, params_seq: Iterable[Params], *,
                          returning: bool = False) -> None:
        await self._trips.round_trip(
            super().executemany(query, params_seq, returning=returning))

    async def fetchone(self) -> Row | None:
        return await self._trips.round_trip(super().fetchone())

    async def fetchmany(self, size: int = 0) -> list[Row]:
        return await self._trips.round_trip(super().fetchmany(size))

    async def fetchall(self) -> list[Row]:
        return await self._trips.round_trip(super().fetchall())

    @property
    def _trips(self) -> DeadlineConnection:
        conn = self.connection
        assert isinstance(conn, DeadlineConnection)
        return conn
