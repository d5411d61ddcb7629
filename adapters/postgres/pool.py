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
from adapters.postgres.primary import checkout_check, hear_last_words, server_of, wants_primary
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
    autocommit: a statement alone is its own transaction (a unit of work says BEGIN); what
    the server says before it hangs up is kept for the checkout check (primary.py)."""
    set_json_loads(msgspec.json.decode, conn)
    set_json_dumps(msgspec.json.encode, conn)
    conn.row_factory = dict_row
    await conn.set_autocommit(True)
    hear_last_words(conn)


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
        check=checkout_check(wants_primary(url), watch.gone),
        kwargs=connect_options(url),
        connection_class=watch.connection_class(),
        reconnect_failed=failed,
        reconnect_timeout=3600,  # keep trying for an hour before reporting
        max_idle=300,
        name="tasks",
    )
    watch.on_lost = _Drain(pool)
    return pool


class _Drain:
    """Once a connection met a silent server, or found it gone or read-only, the idle ones are
    suspect too (they went to the same server, through the same network): the pool drops them
    and connects anew, at most once per round-trip deadline, so that after a partition heals,
    or a standby is promoted, no request meets a dead connection."""

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

    async def check(self) -> str:
        """Reachable, and migrated to exactly this code's schema (schema.py); the server that
        answered (`host:port`: with several hosts, the primary)."""
        try:
            async with self._pool.connection(timeout=PG_PROBE_WAIT_SECONDS) as conn:
                with within(PG_PROBE_ROUND_TRIP_SECONDS):
                    problem = await schema_problem(conn)
                server = server_of(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            watch = watch_of(self._pool)
            failure = watch.failure if watch is not None else None
            raise ServiceUnavailable((failure or diagnose(exc)).short()) from exc
        if problem is not None:
            raise ServiceUnavailable(problem)
        return server
