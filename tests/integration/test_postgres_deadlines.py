"""A silent PostgreSQL costs a bounded wait: the deadlines on the pool's connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import psycopg
import pytest
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

from adapters.postgres.deadline import DeadlineConnection, connect_options, within
from adapters.postgres.pool import PostgresProbe, make_pool
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.timeouts import PG_POOL_WAIT_SECONDS, PG_ROUND_TRIP_SECONDS
from domain.errors import ServiceUnavailable
from tests.support.proxy import Proxy

from .waiting import eventually

#: a unit of work waits for a connection, then for one round trip, at most
BOUND = PG_POOL_WAIT_SECONDS + PG_ROUND_TRIP_SECONDS + 1.0


async def read_one(pool: object) -> None:
    async with PostgresUnitOfWork(pool) as uow:  # type: ignore[arg-type]
        assert await uow.tasks.get(uuid.uuid4()) is None


async def test_a_blackholed_database_fails_units_of_work_in_bounded_time_and_heals(
    database_url: str,
) -> None:
    with Proxy.in_front_of(database_url) as proxy:
        pool = make_pool(proxy.url_for(database_url), max_size=4)
        await pool.open(wait=True, timeout=10)
        try:
            await read_one(pool)
            proxy.blackhole()

            began = time.monotonic()
            outcomes = await asyncio.gather(*(read_one(pool) for _ in range(6)),
                                            return_exceptions=True)
            took = time.monotonic() - began
            assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes
            assert took < BOUND

            began = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                await PostgresProbe(pool).check()
            assert time.monotonic() - began < 2.0  # within what readiness gives a probe

            proxy.heal()  # the connections that lived through it stay silent: never reused

            async def works() -> bool:
                try:
                    await read_one(pool)
                except ServiceUnavailable:
                    return False
                return True

            await eventually(works, "the pool to serve again", timeout=30)
            began = time.monotonic()
            await asyncio.gather(*(read_one(pool) for _ in range(8)))
            assert time.monotonic() - began < 2.0, "a dead connection was handed out"
        finally:
            await pool.close()


# -- one connection: each round trip, its deadline, and what ends it -----------------------------

class Watched(DeadlineConnection):
    """Counts the deadlines it missed."""

    missed = 0

    def deadline_missed(self) -> None:
        self.missed += 1


@contextlib.asynccontextmanager
async def through(proxy: Proxy, database_url: str,
                  autocommit: bool = True) -> AsyncIterator[Watched]:
    conn = await Watched.connect(proxy.url_for(database_url), autocommit=autocommit,
                                 **connect_options(database_url))
    try:
        await conn.execute("SELECT 1")  # answered: the connection is whole before the cut
        yield conn
    finally:
        await conn.close()


async def test_a_round_trip_to_a_silent_server_ends_at_its_deadline_and_closes_the_connection(
    database_url: str,
) -> None:
    with Proxy.in_front_of(database_url) as proxy:
        async with through(proxy, database_url) as conn:
            proxy.blackhole()
            accepted = proxy.accepted
            began = time.monotonic()
            with within(60), pytest.raises(psycopg.OperationalError, match="no answer"):
                async with asyncio.timeout(PG_ROUND_TRIP_SECONDS + 5):  # else: no deadline
                    await conn.execute("SELECT 1")  # a looser `within` leaves it as it is
            took = time.monotonic() - began
            assert PG_ROUND_TRIP_SECONDS - 0.05 <= took < PG_ROUND_TRIP_SECONDS + 1, took
            assert conn.closed and conn.missed == 1
            assert proxy.accepted == accepted, "a cancel request was sent to a silent server"


async def in_pipeline_fetch(conn: Watched) -> None:
    async with conn.pipeline():
        cur = await conn.execute("SELECT 1")  # queued: only the fetch waits for its answer
        await cur.fetchall()


async def in_pipeline_leave(conn: Watched) -> None:
    async with conn.pipeline():
        await conn.execute("SELECT 1")  # its answer is waited for when the pipeline ends


async def executemany(conn: Watched) -> None:
    async with conn.cursor() as cur:
        await cur.executemany("SELECT %s", [(1,), (2,)])


ROUND_TRIPS: dict[str, Callable[[Watched], Awaitable[object]]] = {
    "execute": lambda conn: conn.execute("SELECT 1"),
    "commit": lambda conn: conn.commit(),
    "rollback": lambda conn: conn.rollback(),
    "fetch in pipeline mode": in_pipeline_fetch,
    "leaving pipeline mode": in_pipeline_leave,
    "executemany": executemany,
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
async def test_within_tightens_the_deadline_of_each_kind_of_round_trip(
    database_url: str, name: str,
) -> None:
    tighter = 0.5
    with Proxy.in_front_of(database_url) as proxy:
        async with through(proxy, database_url, autocommit=False) as conn:  # in a transaction
            proxy.blackhole()
            began = time.monotonic()
            with within(tighter), pytest.raises(psycopg.OperationalError, match="no answer"):
                async with asyncio.timeout(PG_ROUND_TRIP_SECONDS + 5):  # else: no deadline
                    await ROUND_TRIPS[name](conn)
            took = time.monotonic() - began
            assert tighter - 0.05 <= took < tighter + 1, took
            assert conn.closed and conn.missed == 1


async def test_a_cancelled_caller_hangs_up_at_once_without_asking_the_server_to_cancel(
    database_url: str,
) -> None:
    with Proxy.in_front_of(database_url) as proxy:
        async with through(proxy, database_url) as conn:
            proxy.blackhole()
            accepted = proxy.accepted
            waiting = asyncio.create_task(conn.execute("SELECT 1"))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            began = time.monotonic()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # psycopg's own way: a cancel request to the silent server, then seconds of waiting
            assert time.monotonic() - began < 1.0
            assert proxy.accepted == accepted, "a cancel request was sent to a silent server"
            assert conn.closed and conn.missed == 0  # no deadline was missed: the caller left


async def test_a_round_trip_that_is_answered_in_time_keeps_the_connection(
    database_url: str,
) -> None:
    with Proxy.in_front_of(database_url) as proxy:
        async with through(proxy, database_url, autocommit=False) as conn:
            for name, trip in ROUND_TRIPS.items():
                with within(PG_ROUND_TRIP_SECONDS):
                    await trip(conn)
                assert not conn.closed, name
            assert conn.missed == 0


@pytest.fixture
def traced() -> Iterator[None]:
    """psycopg instrumented by OpenTelemetry, as `entrypoints.tracing` does, for one test."""
    connects = {cls: vars(cls)["connect"] for cls in (psycopg.Connection, psycopg.AsyncConnection)}
    PsycopgInstrumentor().instrument()
    try:
        yield
    finally:
        PsycopgInstrumentor().uninstrument()
        for cls, connect in connects.items():  # uninstrument leaves them bound to the base class
            cls.connect = connect  # type: ignore[method-assign]


async def test_traced_connections_keep_their_deadlines(database_url: str, traced: None) -> None:
    """The instrumentation wraps the cursor class a connection is given at connect."""
    with Proxy.in_front_of(database_url) as proxy:
        async with through(proxy, database_url) as conn:
            assert conn.cursor_factory.__name__ == "TracedCursorAsyncFactory"
            proxy.blackhole()
            with within(0.3), pytest.raises(psycopg.OperationalError, match="no answer"):
                async with asyncio.timeout(PG_ROUND_TRIP_SECONDS + 5):
                    await conn.execute("SELECT 1")
