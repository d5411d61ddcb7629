"""The PostgreSQL task repository through its unit of work (and tasks created through the task
store): what goes in comes back out."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone
from typing import Any

import psycopg
import pytest

from adapters.postgres.store import PostgresTaskStore
from application.model import Dispatch, NewTask, Stored
from domain.status import TaskSource, TaskStatus
from domain.task import Transition

from .builders import (
    NOW,
    STALE_FIELDS,
    claimed,
    count_rows,
    fetch,
    new_task,
    replace,
    request_for,
    store,
)
from .conftest import UowFactory

PAYLOAD = {
    "name": "Zoë — 日本語 🚀",
    "nested": {"list": [1, 2.5, True, None, {"deep": ["ünïcode", {"k": -7}]}], "empty": {}},
    "big": 2**53,
    "quote\"key": "back\\slash",
}


async def test_a_new_task_comes_back_with_every_field_intact(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    in_india = timezone(timedelta(hours=5, minutes=30))
    task = new_task("Grüße 👋", at=NOW.astimezone(in_india), description="línea\nnueva",
                    payload=PAYLOAD, source=TaskSource.AMQP)
    stored = await steps.create(NewTask(task, request_for(task)))

    got = await fetch(uow, task.id)

    assert stored.inserted
    assert got == task
    assert got.payload == PAYLOAD
    assert got.created_at.utcoffset() is not None
    assert got.created_at == NOW and got.updated_at == NOW
    assert (got.started_at, got.finished_at, got.lease_owner, got.lease_expires_at) == (
        None, None, None, None)


async def test_compare_and_set_stores_the_lease_and_the_outcome_fields(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)
    working = claimed(task, worker="worker-7")
    failed = working.fail(now=working.updated_at + timedelta(seconds=2), reason="disk full ✗")
    async with uow() as u:
        assert await u.tasks.compare_and_set_many([(task, working)]) == {task.id}
        await u.commit()
    assert await fetch(uow, task.id) == working
    async with uow() as u:
        assert await u.tasks.compare_and_set_many([(working, failed)]) == {task.id}
        await u.commit()

    got = await fetch(uow, task.id)

    assert got == failed
    assert got.status is TaskStatus.ERROR and got.error == "disk full ✗" and got.attempts == 1
    assert got.started_at is not None and got.started_at.utcoffset() is not None
    assert got.finished_at is not None and got.finished_at.utcoffset() is not None


async def test_getting_an_unknown_id_returns_none(uow: UowFactory) -> None:
    assert await fetch(uow, new_task().id) is None


async def test_the_same_key_from_the_same_source_returns_the_first_task_and_its_fingerprint(
    steps: PostgresTaskStore, db: psycopg.Connection
) -> None:
    first, second = new_task("first"), new_task("second")
    asked = request_for(first, key="key-1")
    created = await steps.create(NewTask(first, asked))
    again = await steps.create(NewTask(second, request_for(second, key="key-1")))

    assert created.inserted and created.fingerprint == asked.fingerprint()
    assert not again.inserted
    assert again.task == first
    assert again.fingerprint == asked.fingerprint()
    assert count_rows(db) == 1


async def test_the_same_key_under_the_other_source_is_a_different_task(
    steps: PostgresTaskStore, db: psycopg.Connection
) -> None:
    by_api, by_amqp = new_task(source=TaskSource.API), new_task(source=TaskSource.AMQP)
    one = await steps.create(NewTask(by_api, request_for(by_api, key="shared")))
    two = await steps.create(NewTask(by_amqp, request_for(by_amqp, key="shared")))

    assert one.inserted and two.inserted
    assert count_rows(db) == 2


async def test_two_processes_creating_with_the_same_key_at_once_store_exactly_one_row(
    pool: Any, db: psycopg.Connection
) -> None:
    """Two stores (two API processes) never share a statement: the database settles it."""
    async def add(title: str) -> Stored:
        task = new_task(title)
        return await PostgresTaskStore(pool, hold=30).create(
            NewTask(task, request_for(task, key="race")))

    results = await asyncio.gather(add("one"), add("two"))

    winners = [s for s in results if s.inserted]
    assert len(winners) == 1
    assert all(s.task == winners[0].task for s in results)
    assert count_rows(db) == 1


async def test_compare_and_set_succeeds_once(uow: UowFactory, steps: PostgresTaskStore) -> None:
    task = new_task()
    await store(steps, task)
    async with uow() as u:
        first = await u.tasks.compare_and_set_many([(task, claimed(task, worker="a"))])
        await u.commit()
    async with uow() as u:
        second = await u.tasks.compare_and_set_many([(task, claimed(task, worker="b"))])
        await u.commit()

    assert (first, second) == ({task.id}, set())
    assert await fetch(uow, task.id) == claimed(task, worker="a")


@pytest.mark.parametrize("stale", STALE_FIELDS)
async def test_compare_and_set_misses_and_leaves_the_row_alone_when_the_row_moved_on(
    uow: UowFactory, steps: PostgresTaskStore, stale: dict[str, object]
) -> None:
    task = new_task()
    await store(steps, task)
    working = claimed(task, worker="worker-1")
    async with uow() as u:
        assert await u.tasks.compare_and_set_many([(task, working)]) == {task.id}
        await u.commit()

    async with uow() as u:
        hit = await u.tasks.compare_and_set_many([
            (replace(working, **stale), working.complete(now=NOW + timedelta(minutes=1)))])
        await u.commit()

    assert hit == set()
    assert await fetch(uow, task.id) == working


async def test_two_concurrent_claims_of_one_task_let_exactly_one_win(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)
    both_open = asyncio.Barrier(2)

    async def claim(worker: str) -> bool:
        async with uow() as u:
            await both_open.wait()
            won = await u.tasks.compare_and_set_many([(task, claimed(task, worker=worker))])
            await u.commit()
        return won == {task.id}

    results = await asyncio.gather(claim("a"), claim("b"))

    assert sorted(results) == [False, True]
    winner = "a" if results[0] else "b"
    assert await fetch(uow, task.id) == claimed(task, worker=winner)


async def test_leaving_without_commit_stores_nothing(
    uow: UowFactory, steps: PostgresTaskStore, db: psycopg.Connection
) -> None:
    task = new_task()
    await store(steps, task)
    working = claimed(task)
    async with uow() as u:
        assert await u.tasks.compare_and_set_many([(task, working)]) == {task.id}
        await u.tasks.record([Transition.between(task, working, worker="worker-1")])
        await u.outbox.put([Dispatch(task.id, 1)])

    assert await fetch(uow, task.id) == task
    assert count_rows(db, "task_history") == 1  # its `created` row alone
    assert count_rows(db, "dispatch_outbox") == 0


async def test_an_error_inside_the_unit_of_work_rolls_back_and_propagates_unchanged(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)

    async def change_then_fail() -> None:
        async with uow() as u:
            assert await u.tasks.compare_and_set_many([(task, claimed(task))]) == {task.id}
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await change_then_fail()

    assert await fetch(uow, task.id) == task


async def test_history_comes_back_oldest_first_and_only_for_that_task(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    task, other = new_task("mine"), new_task("other")
    await store(steps, task, other)
    working = claimed(task, worker="w-1")
    done = working.complete(now=working.updated_at + timedelta(seconds=5))
    changes = [
        Transition.between(None, task),  # written by the create
        Transition.between(task, working, worker="w-1"),
        Transition.between(working, done, worker="w-1", reason="all good"),
    ]
    async with uow() as u:
        await u.tasks.record(changes[1:2])
        await u.tasks.record([Transition.between(other, claimed(other), worker="w-2")])
        await u.tasks.record(changes[2:])
        await u.tasks.record([])
        await u.commit()

    async with uow() as u:
        history = await u.tasks.history(task.id)

    assert history == changes
    assert [h.to_status for h in history] == ["new", "in_progress", "completed"]
    assert all(h.at.utcoffset() is not None for h in history)


async def test_counts_come_from_the_counters_that_every_change_keeps(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    waiting, working = new_task("waiting"), new_task("working")
    await store(steps, waiting, working)
    async with uow() as u:
        assert await u.tasks.compare_and_set_many([(working, claimed(working, worker="w-1"))])
        await u.commit()

    async with uow() as u:
        counts = await u.tasks.counts()

    assert counts.by_status[TaskStatus.NEW] == 1
    assert counts.by_status[TaskStatus.IN_PROGRESS] == 1
    assert counts.created == 2
    assert counts.oldest_new_at == waiting.updated_at
