"""Connection pool that opens in the background (the database may come up later) and a probe."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import psycopg_pool
import structlog
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps, set_json_loads

from adapters.postgres.errors import diagnose
from adapters.postgres.schema import schema_problem
from adapters.postgres.watch import ConnectWatch, watch_of
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


async def _configure(conn: AsyncConnection[Any]) -> None:
    """JSON through msgspec; rows as dicts, mapped by column name (adapters/postgres/rows.py)."""
    set_json_loads(msgspec.json.decode, conn)
    set_json_dumps(msgspec.json.encode, conn)
    conn.row_factory = dict_row


def make_pool(url: str, max_size: int = 10) -> psycopg_pool.AsyncConnectionPool[Any]:
    def failed(pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        log.warning("database_reconnect_failed", pool=pool.name)

    return psycopg_pool.AsyncConnectionPool(
        url,
        min_size=min(2, max_size),
        max_size=max_size,
        open=False,
        configure=_configure,
        connection_class=ConnectWatch(url).connection_class(),
        reconnect_failed=failed,
        reconnect_timeout=3600,  # keep trying for an hour before reporting
        max_idle=300,
        name="tasks",
    )


async def open_pool(pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
    """Open without waiting: the process starts even while PostgreSQL is still down."""
    await pool.open(wait=False)


class PostgresProbe:
    name = "database"

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def check(self) -> None:
        """Reachable, and migrated to exactly this code's schema (schema.py)."""
        try:
            async with self._pool.connection(timeout=1.5) as conn:
                problem = await schema_problem(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            watch = watch_of(self._pool)
            failure = watch.failure if watch is not None else None
            raise ServiceUnavailable((failure or diagnose(exc)).short()) from exc
        if problem is not None:
            raise ServiceUnavailable(problem)
