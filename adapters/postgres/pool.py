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

from adapters.postgres.statements import statement
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
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute(statement("ping"))
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc
