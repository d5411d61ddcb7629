"""Adding many tasks in one statement (what CreateTask does for concurrent requests)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from application.model import Stored
from domain.errors import InvalidInput
from domain.task import Task

from .builders import count_rows, fetch, new_task, request_for
from .conftest import UowFactory
from .waiting import eventually


async def add_many(uow: UowFactory, tasks: list[Task], keys: list[str | None]) -> list[Stored]:
    requests = [request_for(t, k) for t, k in zip(tasks, keys, strict=True)]
    async with uow() as u:
        stored = await u.tasks.add_many(tasks, requests)
        await u.commit()
    return stored


async def test_every_task_of_a_batch_is_stored_and_answered_in_order(uow: UowFactory) -> None:
    tasks = [new_task(f"task {i}") for i in range(5)]

    stored = await add_many(uow, tasks, [None, "a", None, "b", "c"])

    assert [s.task for s in stored] == tasks
    assert all(s.inserted for s in stored)
    for task in tasks:
        assert await fetch(uow, task.id) == task


async def test_a_key_repeated_within_one_batch_stores_one_task(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    first, again, other = new_task("same"), new_task("same"), new_task("other")

    stored = await add_many(uow, [first, again, other], ["k", "k", "k2"])

    assert [s.inserted for s in stored] == [True, False, True]
    assert stored[1].task == first
    assert stored[1].fingerprint == stored[0].fingerprint
    assert count_rows(db) == 2


async def test_keys_taken_earlier_return_the_stored_tasks_among_new_ones(
    uow: UowFactory,
) -> None:
    earlier = new_task("earlier")
    await add_many(uow, [earlier], ["taken"])
    fresh, replay = new_task("fresh"), new_task("replay, other body")

    stored = await add_many(uow, [fresh, replay], ["new-key", "taken"])

    assert [(s.task, s.inserted) for s in stored] == [(fresh, True), (earlier, False)]
    assert stored[1].fingerprint == request_for(earlier, "taken").fingerprint()


async def test_one_refused_row_fails_the_whole_statement(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    with pytest.raises(InvalidInput):
        await add_many(uow, [new_task("fine"), new_task("t" * 300)], [None, None])

    assert count_rows(db) == 0


async def test_two_batches_with_the_same_keys_in_opposite_orders_both_succeed(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    """A third transaction holds key `m` so that each batch has taken its first key and waits
    on `m`; when it rolls back, each batch needs the key the other one holds."""
    async def both_waiting() -> bool:
        row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND wait_event_type = 'Lock'").fetchone()
        return row == (2,)

    held = new_task("m")
    async with uow() as holder:
        await holder.tasks.add(held, request_for(held, "m"))
        batches = [
            asyncio.ensure_future(add_many(uow, [new_task(k) for k in keys], list(keys)))
            for keys in (("a", "m", "b"), ("b", "m", "a"))
        ]
        await eventually(both_waiting, "both batches to wait on key m", timeout=10)
    # the holder rolled back: key m is free, and each batch next needs the other's first key
    results = await asyncio.gather(*batches, return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert count_rows(db) == 3
