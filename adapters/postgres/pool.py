"""Connection pool that opens in the background (the database may come up later) and a probe."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import psycopg
import psycopg_pool
import structlog
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps, set_json_loads

from adapters.postgres.deadline import connect_options, within
from adapters.postgres.errors import diagnose
from adapters.postgres.schema import schema_problem
from adapters.postgres.watch import ConnectWatch, watch_of
from adapters.timeouts import (
    PG_PROBE_ROUND_TRIP_SECONDS,
    PG_PROBE_WAIT_SECONDS,
    PG_ROUND_TRIP_SECONDS,
)
from application.throttle import Throttle
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


async def _configure(conn: AsyncConnection[Any]) -> None:
    """JSON through msgspec; rows as dicts, mapped by column name (adapters/postgres/rows.py);
    autocommit: a statement alone is its own transaction (a unit of work says BEGIN)."""
    set_json_loads(msgspec.json.decode, conn)
    set_json_dumps(msgspec.json.encode, conn)
    conn.row_factory = dict_row
    await conn.set_autocommit(True)


def make_pool(url: str, max_size: int = 10) -> psycopg_pool.AsyncConnectionPool[Any]:
    def failed(pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        log.warning("database_reconnect_failed", pool=pool.name)

    watch = ConnectWatch(url)
    pool = psycopg_pool.AsyncConnectionPool(
        url,
        min_size=min(2, max_size),
        max_size=max_size,
        open=False,
        configure=_configure,
        kwargs=connect_options(url),
        connection_class=watch.connection_class(),
        reconnect_failed=failed,
        reconnect_timeout=3600,  # keep trying for an hour before reporting
        max_idle=300,
        name="tasks",
    )
    watch.on_silence = _Drain(pool)
    return pool


class _Drain:
    """Once a connection met a silent server, the idle ones are suspect too (they went through
    the same network): the pool drops them and connects anew, at most once per round-trip
    deadline, so that after a partition heals no request meets a dead connection."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._once = Throttle(PG_ROUND_TRIP_SECONDS)
        self._running: set[asyncio.Task[None]] = set()

    def __call__(self) -> None:
        if self._once.check("drain") is None or self._pool.closed:
            return
        task = asyncio.get_running_loop().create_task(self._pool.drain())
        self._running.add(task)
        task.add_done_callback(self._running.discard)


async def open_pool(pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
    """Open without waiting: the process starts even while PostgreSQL is still down."""
    await pool.open(wait=False)


class PostgresProbe:
    name = "database"

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def check(self) -> str | None:
        """Reachable, and migrated to exactly this code's schema (schema.py); says which server
        answered (`host:port`: one of several hosts named, the primary)."""
        try:
            async with self._pool.connection(timeout=PG_PROBE_WAIT_SECONDS) as conn:
                with within(PG_PROBE_ROUND_TRIP_SECONDS):
                    problem = await schema_problem(conn)
                where = f"{conn.info.host}:{conn.info.port}"
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            watch = watch_of(self._pool)
            failure = watch.failure if watch is not None else None
            raise ServiceUnavailable((failure or diagnose(exc)).short()) from exc
        if problem is not None:
            raise ServiceUnavailable(problem)
        return where
