"""The history as a feed on PostgreSQL: an event held back by an older transaction is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from adapters.postgres.events import PostgresEventLog
from adapters.postgres.store import PostgresTaskStore
from application.model import ORIGIN, Event, NewTask
from application.watch import LAST, WatchTasks
from domain.task import Transition

from .builders import new_task, request_for
from .conftest import UowFactory


class EndsTransactionAfterTheRead:
    """The pool, except that right after the feed's read statement an older transaction ends:
    the moment where a horizon taken after the read would already be past the events that
    this read could not see yet."""

    def __init__(self, pool: Any, older: psycopg.AsyncConnection[Any]) -> None:
        self._pool = pool
        self._older = older

    @asynccontextmanager
    async def connection(self, timeout: float) -> AsyncIterator[Any]:
        async with self._pool.connection(timeout=timeout) as conn:
            yield _Connection(conn, self._older)


class _Connection:
    def __init__(self, conn: Any, older: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        self._older = older

    async def execute(self, query: Any, params: Any = None) -> Any:
        cursor = await self._conn.execute(query, params)
        if "FROM task_history h JOIN tasks" in query.as_string(None) and not self._older.closed:
            await self._older.commit()
            await self._older.close()
        return cursor


async def test_an_event_held_back_by_an_older_transaction_is_read_once_that_one_ends(
    pool: Any, database_url: str, steps: PostgresTaskStore
) -> None:
    older = await psycopg.AsyncConnection.connect(database_url)
    await older.execute("SELECT pg_current_xact_id()")  # open, with an id below the next one
    task = new_task("held back")
    await steps.create(NewTask(task, request_for(task)))
    feed = PostgresEventLog(EndsTransactionAfterTheRead(pool, older), idle=0.01)  # type: ignore[arg-type]
    changes = feed.changes()

    await asyncio.wait_for(anext(changes), 1)
    assert await feed.read(ORIGIN, LAST, 10) == []  # the older transaction was still open

    # It looks again (every `idle` seconds while it finds nothing) until the event is out; it
    # must never stop looking before that.
    events: list[Event] = []
    for _ in range(500):
        try:
            await asyncio.wait_for(anext(changes), 1)
        except TimeoutError:
            raise AssertionError("the older transaction ended, but the feed stopped looking: "
                                 "the event stays unread until some other change") from None
        events = await feed.read(ORIGIN, LAST, 10)
        if events:
            break
    assert [e.task.id for e in events] == [task.id]


async def test_a_writing_transaction_of_another_database_does_not_hold_the_feed_back(
    pool: Any, empty_database_url: str, steps: PostgresTaskStore
) -> None:
    """Its transactions cannot write this database's history: the feed need not wait for them
    (the one above, of this database, it must wait for)."""
    elsewhere = await psycopg.AsyncConnection.connect(empty_database_url)
    try:
        await elsewhere.execute("SELECT pg_current_xact_id()")  # open, older than the event
        task = new_task("not held back")
        await steps.create(NewTask(task, request_for(task)))
        feed = PostgresEventLog(pool, patience=0.05)

        # first the cheap horizon, which any database's oldest writer holds back; once the
        # same writer has stayed the oldest for `patience`, the exact one, which leaves it out
        assert await feed.read(ORIGIN, LAST, 10) == []
        await asyncio.sleep(0.06)
        events = await feed.read(ORIGIN, LAST, 10)
        assert [e.task.id for e in events] == [task.id]
        assert await feed.latest() == events[-1].id
        assert await feed.read_last(task.id) == events[-1]
    finally:
        await elsewhere.rollback()
        await elsewhere.close()


async def test_a_task_stream_gets_every_event_while_another_database_holds_the_cheap_horizon(
    pool: Any, empty_database_url: str, uow: UowFactory,
    steps: PostgresTaskStore,
) -> None:
    """The feed reads the horizon two ways; a stream that joined at one must not catch up
    below the other (it would skip what lies between, or end having sent nothing)."""
    elsewhere = await psycopg.AsyncConnection.connect(empty_database_url)
    try:
        await elsewhere.execute("SELECT pg_current_xact_id()")  # open, older than the changes
        task = new_task("watched")
        started = task.claim(now=task.created_at, worker="w1", lease_until=task.created_at)
        done = started.complete(now=task.created_at)
        await steps.create(NewTask(task, request_for(task)))
        async with uow() as u:  # two changes in one transaction
            assert await u.tasks.compare_and_set_many([(task, started)]) == {task.id}
            assert await u.tasks.compare_and_set_many([(started, done)]) == {task.id}
            await u.tasks.record([Transition.between(task, started, worker="w1"),
                                  Transition.between(started, done, worker="w1")])
            await u.commit()
        watch = WatchTasks(PostgresEventLog(pool, idle=0.02, patience=0.05))
        reader = asyncio.create_task(watch.run())
        try:
            got: list[Event] = []
            async with watch.subscribe(task_id=task.id) as stream, asyncio.timeout(5):
                while (batch := await stream.next(0.05)) is not None:
                    got += batch
        finally:
            reader.cancel()
        assert [(e.transition.from_status, e.transition.to_status) for e in got] == [
            (None, "new"), ("new", "in_progress"), ("in_progress", "completed")]
    finally:
        await elsewhere.rollback()
        await elsewhere.close()
