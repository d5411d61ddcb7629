"""The PostgreSQL task repository through its unit of work: what goes in comes back out."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone

import psycopg
import pytest

from application.model import Stored
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


async def test_a_new_task_comes_back_with_every_field_intact(uow: UowFactory) -> None:
    in_india = timezone(timedelta(hours=5, minutes=30))
    task = new_task("Grüße 👋", at=NOW.astimezone(in_india), description="línea\nnueva",
                    payload=PAYLOAD, source=TaskSource.AMQP)
    async with uow() as u:
        stored = await u.tasks.add(task, request_for(task))
        await u.commit()

    got = await fetch(uow, task.id)

    assert stored.inserted
    assert got == task
    assert got.payload == PAYLOAD
    assert got.created_at.utcoffset() is not None
    assert got.created_at == NOW and got.updated_at == NOW
    assert (got.started_at, got.finished_at, got.lease_owner, got.lease_expires_at) == (
        None, None, None, None)


async def test_compare_and_set_stores_the_lease_and_the_outcome_fields(uow: UowFactory) -> None:
    task = new_task()
    await store(uow, task)
    working = claimed(task, worker="worker-7")
    failed = working.fail(now=working.updated_at + timedelta(seconds=2), reason="disk full ✗")
    async with uow() as u:
        assert await u.tasks.compare_and_set(task, working)
        await u.commit()
    assert await fetch(uow, task.id) == working
    async with uow() as u:
        assert await u.tasks.compare_and_set(working, failed)
        await u.commit()

    got = await fetch(uow, task.id)

    assert got == failed
    assert got.status is TaskStatus.ERROR and got.error == "disk full ✗" and got.attempts == 1
    assert got.started_at is not None and got.started_at.utcoffset() is not None
    assert got.finished_at is not None and got.finished_at.utcoffset() is not None


async def test_getting_an_unknown_id_returns_none(uow: UowFactory) -> None:
    assert await fetch(uow, new_task().id) is None


async def test_the_same_key_from_the_same_source_returns_the_first_task_and_its_fingerprint(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    first, second = new_task("first"), new_task("second")
    asked = request_for(first, key="key-1")
    async with uow() as u:
        created = await u.tasks.add(first, asked)
        await u.commit()
    async with uow() as u:
        again = await u.tasks.add(second, request_for(second, key="key-1"))
        await u.commit()

    assert created.inserted and created.fingerprint == asked.fingerprint()
    assert not again.inserted
    assert again.task == first
    assert again.fingerprint == asked.fingerprint()
    assert count_rows(db) == 1


async def test_the_same_key_under_the_other_source_is_a_different_task(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    by_api, by_amqp = new_task(source=TaskSource.API), new_task(source=TaskSource.AMQP)
    async with uow() as u:
        one = await u.tasks.add(by_api, request_for(by_api, key="shared"))
        two = await u.tasks.add(by_amqp, request_for(by_amqp, key="shared"))
        await u.commit()

    assert one.inserted and two.inserted
    assert count_rows(db) == 2


async def test_two_concurrent_adds_with_the_same_key_store_exactly_one_row(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    both_open = asyncio.Barrier(2)

    async def add(title: str) -> Stored:
        task = new_task(title)
        async with uow() as u:
            await both_open.wait()  # both transactions exist before either inserts
            stored = await u.tasks.add(task, request_for(task, key="race"))
            await u.commit()
        return stored

    results = await asyncio.gather(add("one"), add("two"))

    winners = [s for s in results if s.inserted]
    assert len(winners) == 1
    assert all(s.task == winners[0].task for s in results)
    assert count_rows(db) == 1


async def test_compare_and_set_succeeds_once(uow: UowFactory) -> None:
    task = new_task()
    await store(uow, task)
    async with uow() as u:
        first = await u.tasks.compare_and_set(task, claimed(task, worker="a"))
        await u.commit()
    async with uow() as u:
        second = await u.tasks.compare_and_set(task, claimed(task, worker="b"))
        await u.commit()

    assert (first, second) == (True, False)
    assert await fetch(uow, task.id) == claimed(task, worker="a")


@pytest.mark.parametrize("stale", STALE_FIELDS)
async def test_compare_and_set_misses_and_leaves_the_row_alone_when_the_row_moved_on(
    uow: UowFactory, stale: dict[str, object]
) -> None:
    task = new_task()
    await store(uow, task)
    working = claimed(task, worker="worker-1")
    async with uow() as u:
        assert await u.tasks.compare_and_set(task, working)
        await u.commit()

    async with uow() as u:
        hit = await u.tasks.compare_and_set(replace(working, **stale),
                                            working.complete(now=NOW + timedelta(minutes=1)))
        await u.commit()

    assert hit is False
    assert await fetch(uow, task.id) == working


async def test_two_concurrent_claims_of_one_task_let_exactly_one_win(uow: UowFactory) -> None:
    task = new_task()
    await store(uow, task)
    both_open = asyncio.Barrier(2)

    async def claim(worker: str) -> bool:
        async with uow() as u:
            await both_open.wait()
            won = await u.tasks.compare_and_set(task, claimed(task, worker=worker))
            await u.commit()
        return won

    results = await asyncio.gather(claim("a"), claim("b"))

    assert sorted(results) == [False, True]
    winner = "a" if results[0] else "b"
    assert await fetch(uow, task.id) == claimed(task, worker=winner)


async def test_leaving_without_commit_stores_nothing(
    uow: UowFactory, db: psycopg.Connection
) -> None:
    task = new_task()
    async with uow() as u:
        await u.tasks.add(task, request_for(task))
        await u.tasks.record([Transition.between(None, task)])

    assert await fetch(uow, task.id) is None
    assert count_rows(db) == 0 and count_rows(db, "task_history") == 0


async def test_an_error_inside_the_unit_of_work_rolls_back_and_propagates_unchanged(
    uow: UowFactory,
) -> None:
    task = new_task()

    async def add_then_fail() -> None:
        async with uow() as u:
            await u.tasks.add(task, request_for(task))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await add_then_fail()

    assert await fetch(uow, task.id) is None


async def test_history_comes_back_oldest_first_and_only_for_that_task(uow: UowFactory) -> None:
    task, other = new_task("mine"), new_task("other")
    await store(uow, task, other)
    working = claimed(task, worker="w-1")
    done = working.complete(now=working.updated_at + timedelta(seconds=5))
    steps = [
        Transition.between(None, task),
        Transition.between(task, working, worker="w-1"),
        Transition.between(working, done, worker="w-1", reason="all good"),
    ]
    async with uow() as u:
        await u.tasks.record(steps[:2])
        await u.tasks.record([Transition.between(None, other)])
        await u.tasks.record(steps[2:])
        await u.tasks.record([])
        await u.commit()

    async with uow() as u:
        history = await u.tasks.history(task.id)

    assert history == steps
    assert [h.to_status for h in history] == ["new", "in_progress", "completed"]
    assert all(h.at.utcoffset() is not None for h in history)


async def test_counts_come_from_the_counters_that_every_change_keeps(uow: UowFactory) -> None:
    waiting, working = new_task("waiting"), new_task("working")
    await store(uow, waiting, working)
    async with uow() as u:
        assert await u.tasks.compare_and_set(working, claimed(working, worker="w-1"))
        await u.commit()

    async with uow() as u:
        counts = await u.tasks.counts()

    assert counts.by_status[TaskStatus.NEW] == 1
    assert counts.by_status[TaskStatus.IN_PROGRESS] == 1
    assert counts.created == 2
    assert counts.oldest_new_at == waiting.updated_at
