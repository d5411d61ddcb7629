"""The history as an event feed on PostgreSQL: order, late commits, notifications, cancels."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from adapters.postgres.cancels import CANCELS, hear_cancels
from adapters.postgres.events import PostgresEventLog
from adapters.postgres.listener import PostgresListener
from adapters.postgres.store import PostgresTaskStore
from adapters.system import SystemClock
from application.model import ORIGIN, Claimed, Event, NewTask
from application.operator import CancelTask
from application.stops import StopRequests
from application.watch import LAST

from .builders import new_task, request_for
from .waiting import eventually


@pytest.fixture
def listener(database_url: str) -> PostgresListener:
    return PostgresListener(database_url, check_every=1.0)


@pytest.fixture
def feed(pool: Any) -> PostgresEventLog:
    return PostgresEventLog(pool, idle=0.05)


async def _true(value: bool) -> bool:
    return value


async def created(steps: PostgresTaskStore, title: str) -> uuid.UUID:
    """A task and its `created` history row, in one statement (as CreateTask stores it)."""
    task = new_task(title)
    await steps.create(NewTask(task, request_for(task)))
    return task.id


async def claim(steps: PostgresTaskStore, task_id: uuid.UUID) -> None:
    now = datetime.now(UTC)
    assert isinstance(await steps.claim(task_id, worker="w", now=now,
                                        lease_until=now + timedelta(seconds=30)), Claimed)


async def test_events_come_in_commit_order_with_the_task_as_it_was_then(
    steps: PostgresTaskStore, feed: PostgresEventLog,
) -> None:
    first = await created(steps, "one")
    second = await created(steps, "two")
    await claim(steps, first)

    async def all_three() -> list[Event] | None:
        """Readable once no older transaction of any database could still commit history
        (another session's writer may hold the horizon back a moment)."""
        read = await feed.read(ORIGIN, LAST, 10)
        return read if len(read) >= 3 else None

    events = await eventually(all_three, "the three events readable")

    assert [(e.task.id, e.transition.to_status) for e in events] == [
        (first, "new"), (second, "new"), (first, "in_progress")]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[0].task.status == "new" and events[2].task.attempts == 1
    assert [e.id for e in await feed.read(events[0].id, LAST, 10)] == [e.id for e in events[1:]]
    assert [e.id for e in await feed.read(ORIGIN, LAST, 10, task_id=first)] == [
        events[0].id, events[2].id]
    last = await feed.read_last(first)
    assert last is not None and last.id == events[2].id
    assert await feed.latest() == events[2].id


async def test_an_event_is_held_back_while_an_older_transaction_is_open_then_never_skipped(
    steps: PostgresTaskStore, feed: PostgresEventLog, database_url: str,
) -> None:
    """Row ids are handed out in insert order: a transaction that took its id first but
    commits last must not be skipped by a reader that already moved past the others."""
    before = await feed.latest()
    async with await psycopg.AsyncConnection.connect(database_url) as slow:
        early = new_task("early")
        await slow.execute("SELECT pg_current_xact_id()")  # its transaction id comes first
        await slow.execute(
            "INSERT INTO tasks (id, title, payload, status, attempts, source, created_at,"
            " updated_at) VALUES (%s, 'early', '{}', 'new', 0, 'api', now(), now())",
            (early.id,))
        await slow.execute("INSERT INTO task_history (task_id, to_status, at, attempt)"
                           " VALUES (%s, 'new', now(), 0)", (early.id,))
        late = await created(steps, "late")  # commits while `slow` is still open

        held = await feed.read(before, LAST, 10)
        assert held == []  # the late one waits: an older transaction could still commit
        await slow.commit()

    events = await eventually(lambda: feed.read(before, LAST, 10), "both events readable")
    assert [e.task.id for e in events] == [early.id, late]


async def test_the_feed_looks_again_at_once_after_events_and_slowly_when_there_are_none(
    pool: Any, steps: PostgresTaskStore,
) -> None:
    feed = PostgresEventLog(pool, idle=10.0)  # so slow when idle that a wait would show
    changes = feed.changes()
    await asyncio.wait_for(anext(changes), 1)  # the first look is at once
    assert await feed.read(ORIGIN, LAST, 10) == []
    with pytest.raises(TimeoutError):  # found nothing: the next look waits `idle`
        await asyncio.wait_for(anext(changes), 0.5)
    changes = feed.changes()
    await anext(changes)
    await created(steps, "found")
    assert await eventually(lambda: feed.read(ORIGIN, LAST, 10), "the event readable")
    await asyncio.wait_for(anext(changes), 1)  # found events: the next look is at once


async def test_a_cancel_asked_for_a_running_task_reaches_every_listener_with_its_attempt(
    steps: PostgresTaskStore, database_url: str,
) -> None:
    stops = StopRequests()
    listener = PostgresListener(database_url, check_every=1.0)
    hear_cancels(listener, stops)
    running = asyncio.create_task(listener.run())
    try:
        await eventually(lambda: _true(listener.connected), "the listener to connect")
        task_id = await created(steps, "cancel me")
        await claim(steps, task_id)
        with stops.watching((task_id, 1)) as stop:
            cancelled = await CancelTask(steps, SystemClock())(task_id, "ops", None)
            assert not cancelled.stopped  # running: its worker is asked to stop
            await asyncio.wait_for(stop.wait(), 2.0)
    finally:
        running.cancel()
    assert CANCELS == "task_cancels"


async def test_the_listener_reconnects_after_its_connection_is_killed_and_hears_again(
    listener: PostgresListener, db: psycopg.Connection, steps: PostgresTaskStore,
) -> None:
    stops = StopRequests()
    hear_cancels(listener, stops)
    running = asyncio.create_task(listener.run())
    try:
        await eventually(lambda: _true(listener.connected), "the listener to connect")
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND application_name = 'tasks listener'")
        await eventually(lambda: _true(not listener.connected), "the listener to notice", 10)
        await eventually(lambda: _true(listener.connected), "the listener to come back", 15)
        task_id = await created(steps, "cancel me after the reconnect")
        await claim(steps, task_id)
        with stops.watching((task_id, 1)) as stop:
            await CancelTask(steps, SystemClock())(task_id, "ops", None)
            await asyncio.wait_for(stop.wait(), 3.0)
    finally:
        running.cancel()
