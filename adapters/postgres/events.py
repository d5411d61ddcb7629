"""The history as an event feed on PostgreSQL: reads by position, woken by LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import psycopg_pool
from psycopg import sql

from adapters.postgres.rows import IMMUTABLE, names, to_transition
from adapters.postgres.statements import statement
from adapters.postgres.uow import translated
from adapters.timeouts import PG_POOL_WAIT_SECONDS
from application.model import ORIGIN, Event, EventId
from domain.task import Task, Transition

_TRANSITION = tuple(Transition.__struct_fields__)
_BY_TASK = "h.task_id = %(task_id)s"


@functools.cache
def _q(name: str, by_task: bool = False) -> sql.SQL:
    where = sql.SQL(_BY_TASK if by_task else "true")
    return sql.SQL(statement(name, task_columns=names(IMMUTABLE, prefix="t"),
                             filters=where).as_string(None))


def to_event(row: Mapping[str, Any]) -> Event:
    transition = to_transition({k: row[k] for k in _TRANSITION})
    base = msgspec.convert({**{c: row[c] for c in IMMUTABLE}, "status": row["to_status"],
                            "attempts": row["attempt"], "error": None,
                            "updated_at": row["at"]}, Task, strict=False)
    return Event((row["tx"], row["seq"]), transition, transition.applied_to(base))


class PostgresEventLog:
    """EventLog over `task_history`, read by position, without notifications: while the
    feed's loop reads (somebody watches), `changes()` ticks at once after a read that found
    events and backs off to every `idle` seconds after reads that found none, so that a change
    reaches a stream well within a second and an idle feed costs a few reads a second. (A
    NOTIFY per transaction would cost every listening session a transaction per change of
    every task, watched or not.) An event is readable once every older transaction that could
    write the history has ended; one still open holds back the events after it until the next
    tick.

    The horizon is read the cheap way (the oldest open writer of any database) until the same
    writer has been the oldest for `patience` seconds, then the exact way, which leaves out
    other databases' transactions: a long one elsewhere on the server delays events by about
    `patience`, not by its whole length."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any], busy: float = 0.0,
                 idle: float = 0.2, patience: float = 0.1) -> None:
        self._pool = pool
        self._busy = busy
        self._idle = idle
        self._patience = patience
        self._found = False  # whether a read since the last tick found events
        self._oldest: tuple[int, float] | None = None  # the oldest writer seen, since when
        self._highest = 0  # the highest horizon handed out

    async def changes(self) -> AsyncIterator[None]:
        while True:
            yield None
            found, self._found = self._found, False
            await asyncio.sleep(self._busy if found else self._idle)

    async def latest(self) -> EventId:
        async with translated(), self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn:
            horizon = await self._horizon(conn)
            row = await (await conn.execute(_q("events_latest"), {"horizon": horizon})).fetchone()
        return (row["tx"], row["seq"]) if row else ORIGIN

    async def _horizon(self, conn: Any) -> int:
        """Every transaction below it that could write the history has ended; the first
        statement of the read, so that the read sees all of their rows.

        Never lower than one handed out before: the cheap and the exact way can disagree, and
        a stream that joined the feed at an exact position must not catch up below a cheap one
        (it would skip what lies between). A horizon once sound stays sound: no transaction
        that starts later gets an id below it."""
        loop = asyncio.get_running_loop()
        exact = self._oldest is not None and loop.time() - self._oldest[1] >= self._patience
        found = await (await conn.execute(
            _q("events_horizon_exact" if exact else "events_horizon"))).fetchone()
        assert found is not None
        if self._oldest is None or self._oldest[0] != found["oldest"]:
            self._oldest = (found["oldest"], loop.time())
        self._highest = max(self._highest, found["horizon"])
        return self._highest

    async def read(self, after: EventId, until: EventId, limit: int,
                   task_id: uuid.UUID | None = None) -> list[Event]:
        params = {"tx": after[0], "seq": after[1], "until_tx": until[0],
                  "until_seq": until[1], "limit": limit, "task_id": task_id}
        async with translated(), self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn:
            # The horizon first, then the rows below it: every transaction under the horizon
            # had ended before the read began, so the read sees all of their rows, and "all
            # that was heard of is out" is decided on what this read saw. Taken after the
            # read, a horizon could pass a transaction that ended in between, and its events
            # would wait unread for some later change.
            horizon = await self._horizon(conn)
            rows = await (await conn.execute(_q("events_after", task_id is not None),
                                             {**params, "horizon": horizon})).fetchall()
        self._found |= bool(rows)
        return [to_event(row) for row in rows]

    async def read_last(self, task_id: uuid.UUID) -> Event | None:
        async with translated(), self._pool.connection(timeout=PG_POOL_WAIT_SECONDS) as conn:
            horizon = await self._horizon(conn)
            row = await (await conn.execute(_q("events_last"), {
                "task_id": task_id, "horizon": horizon})).fetchone()
        return to_event(row) if row else None
