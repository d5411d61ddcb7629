"""The PostgreSQL unit of work: one pooled connection, one transaction, errors translated."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import psycopg
import psycopg_pool
import structlog
from psycopg import AsyncConnection

from adapters.diagnosis import scrub
from adapters.postgres.repository import PostgresOutbox, PostgresTasks
from adapters.postgres.schema import REQUEST_NOT_MIGRATED
from adapters.timeouts import PG_POOL_WAIT_SECONDS
from application.throttle import Throttle
from domain.errors import InvalidInput, ServiceUnavailable

log = structlog.get_logger(__name__)

#: psycopg errors meaning "the database is not reachable right now" rather than "bad request";
#: a server that refuses writes is a primary no longer (a switchover: deadline.py drops it)
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout,
               psycopg.errors.ReadOnlySqlTransaction)
#: a table or column the code needs is missing: the schema is older than the code
NOT_MIGRATED = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)
#: an outage fails every request alike: said once per interval, not once per request
_said = Throttle(30.0)


def translate(exc: BaseException) -> BaseException | None:
    """The application error for a psycopg error, or None when it is not one of ours."""
    if isinstance(exc, UNAVAILABLE):
        error = scrub(f"{type(exc).__name__}: {exc}".strip())
        if (extra := _said.check(error)) is not None:
            log.warning("database_unavailable", error=error, **extra)
        return ServiceUnavailable("database unavailable")
    if isinstance(exc, NOT_MIGRATED):  # said by whoever meets it (throttled there)
        return ServiceUnavailable(REQUEST_NOT_MIGRATED)
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return InvalidInput(f"the database refused the value: {exc.diag.message_primary or exc}")
    return None


@contextlib.asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """psycopg errors raised inside leave as the application's own (see translate)."""
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc


class PostgresUnitOfWork:
    """One transaction on a pooled connection (the pool's connections are in autocommit, so it
    is opened here with BEGIN); rolled back on exit unless `commit()` was called; psycopg errors
    leave as our own."""

    tasks: PostgresTasks
    outbox: PostgresOutbox

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any],
                 timeout: float = PG_POOL_WAIT_SECONDS) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: AsyncConnection[Any] | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        async with translated():
            self._conn = await self._pool.getconn(timeout=self._timeout)
            try:
                await self._conn.execute("BEGIN")
            except BaseException:
                await self._pool.putconn(self._conn)
                self._conn = None
                raise
        self.tasks = PostgresTasks(self._conn)
        self.outbox = PostgresOutbox(self._conn)
        return self

    async def commit(self) -> None:
        assert self._conn is not None
        async with translated():
            await self._conn.execute("COMMIT")
        self._committed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if not self._committed and not conn.closed:
                await conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the pool checks the connection and discards it if it is broken
        finally:
            await self._pool.putconn(conn)
        if exc is not None and (mapped := translate(exc)) is not None:
            raise mapped from exc
