"""The PostgreSQL unit of work: one pooled connection, one transaction, errors translated."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
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

#: psycopg errors meaning "the database is not reachable right now" rather than "bad request".
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
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
    """Rolls back on exit unless `commit()` was called; psycopg errors leave as our own.

    With `pipeline=True` the transaction runs in psycopg's pipeline mode: a statement whose
    result nobody reads (history rows, outbox rows, BEGIN itself) travels with the next one
    that is read or with the COMMIT instead of costing a round trip of its own. That pays
    where a process waits on round trips (the API's creates) and costs where it is short of
    CPU (the worker's claims and finishes): docs/performance.md has the runs."""

    tasks: PostgresTasks
    outbox: PostgresOutbox

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        timeout: float = PG_POOL_WAIT_SECONDS,
        pipeline: bool = False,
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._pipelined = pipeline
        self._conn: AsyncConnection[Any] | None = None
        self._pipeline: AbstractAsyncContextManager[Any] | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        try:
            self._conn = await self._pool.getconn(timeout=self._timeout)
        except UNAVAILABLE as exc:
            raise translate(exc) from exc  # type: ignore[misc]
        self._pipeline = self._conn.pipeline() if self._pipelined else contextlib.nullcontext()
        try:
            await self._pipeline.__aenter__()
        except BaseException as exc:
            await self._pool.putconn(self._conn)
            self._conn = self._pipeline = None
            if (mapped := translate(exc)) is not None:
                raise mapped from exc
            raise
        self.tasks = PostgresTasks(self._conn)
        self.outbox = PostgresOutbox(self._conn)
        return self

    async def commit(self) -> None:
        assert self._conn is not None
        await self._conn.commit()
        self._committed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        pipeline, self._pipeline = self._pipeline, None
        assert conn is not None
        assert pipeline is not None
        try:
            try:
                # syncs what is still queued: an error in it is this unit's error
                await pipeline.__aexit__(exc_type, exc, tb)
            except psycopg.Error as late:
                if exc is None:
                    exc = late
            if not self._committed and not conn.closed:
                await conn.rollback()
        except psycopg.Error:
            pass  # the pool checks the connection and discards it if it is broken
        finally:
            await self._pool.putconn(conn)
        if exc is not None and (mapped := translate(exc)) is not None:
            raise mapped from exc
        if exc is not None and exc_type is None:
            raise exc
