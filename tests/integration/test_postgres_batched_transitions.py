"""Many transitions in one statement on PostgreSQL: compare-and-set per row, locks in id order."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import psycopg
import pytest

from adapters.postgres.store import PostgresTaskStore
from domain.task import Task

from .builders import NOW, STALE_FIELDS, claimed, fetch, new_task, replace, store
from .conftest import UowFactory
from .waiting import eventually


def fill(db: psycopg.Connection, rows: int = 5000) -> None:
    """Enough analysed rows that the planner drives an UPDATE from the batch through the primary
    key, in the batch's order: a statement that locked rows in that order could deadlock."""
    db.execute("INSERT INTO tasks (id, title, status, source, created_at, updated_at) "
               "SELECT gen_random_uuid(), 'filler', 'completed', 'api', now(), now() "
               "FROM generate_series(1, %s)", (rows,))
    db.execute("ANALYZE tasks")


async def claim_many(uow: UowFactory, tasks: list[Task], worker: str) -> set[uuid.UUID]:
    async with uow() as u:
        written = await u.tasks.compare_and_set_many([(t, claimed(t, worker)) for t in tasks])
        await u.commit()
    return written


async def test_get_many_returns_each_stored_task_once_and_leaves_out_unknown_ids(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    one, two, unknown = new_task("one"), new_task("two"), new_task("never stored")
    await store(steps, one, two)

    async with uow() as u:
        found = await u.tasks.get_many([two.id, unknown.id, one.id, two.id])
        none = await u.tasks.get_many([])

    assert sorted(found, key=lambda t: t.title) == [one, two]
    assert none == []


async def test_compare_and_set_many_writes_the_rows_still_as_read_and_only_those(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    fresh, moved_on, gone = new_task("fresh"), new_task("moved on"), new_task("never stored")
    await store(steps, fresh, moved_on)
    assert await claim_many(uow, [moved_on], "other") == {moved_on.id}
    working = claimed(fresh, "w1")
    failed = working.fail(now=working.updated_at + timedelta(seconds=2), reason="disk full ✗")

    written = await claim_many(uow, [fresh, moved_on, gone], "w1")
    async with uow() as u:
        finished = await u.tasks.compare_and_set_many([(working, failed)])
        await u.commit()

    assert written == {fresh.id}
    assert finished == {fresh.id}
    assert await fetch(uow, fresh.id) == failed
    assert await fetch(uow, moved_on.id) == claimed(moved_on, "other")
    assert await fetch(uow, gone.id) is None


@pytest.mark.parametrize("stale", STALE_FIELDS)
async def test_a_stale_pair_in_a_batch_misses_while_the_others_are_written(
    uow: UowFactory, steps: PostgresTaskStore, stale: dict[str, object]
) -> None:
    mine, other = new_task("mine"), new_task("other")
    await store(steps, mine, other)
    await claim_many(uow, [mine, other], "worker-1")
    working_mine, working_other = claimed(mine, "worker-1"), claimed(other, "worker-1")
    later = NOW + timedelta(minutes=1)

    async with uow() as u:
        written = await u.tasks.compare_and_set_many([
            (replace(working_mine, **stale), working_mine.complete(now=later)),
            (working_other, working_other.complete(now=later)),
        ])
        await u.commit()

    assert written == {other.id}
    assert await fetch(uow, mine.id) == working_mine
    assert await fetch(uow, other.id) == working_other.complete(now=later)


async def test_a_batch_left_without_commit_changes_nothing(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    tasks = [new_task(f"t{n}") for n in range(3)]
    await store(steps, *tasks)

    async with uow() as u:
        assert len(await u.tasks.compare_and_set_many([(t, claimed(t)) for t in tasks])) == 3

    for task in tasks:
        assert await fetch(uow, task.id) == task


async def test_a_task_twice_in_one_batch_is_refused_before_anything_is_written(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)

    with pytest.raises(ValueError, match="distinct"):
        await claim_many(uow, [task, task], "w1")

    assert await fetch(uow, task.id) == task


async def test_a_second_compare_and_set_from_the_same_value_in_one_transaction_misses(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)

    async with uow() as u:
        first = await u.tasks.compare_and_set_many([(task, claimed(task, "a"))])
        second = await u.tasks.compare_and_set_many([(task, claimed(task, "b"))])
        got = await u.tasks.get(task.id)
        await u.commit()

    assert (first, second) == ({task.id}, set())
    assert got == claimed(task, "a")


async def test_two_batches_over_the_same_ids_in_opposite_orders_claim_each_task_once(
    uow: UowFactory, steps: PostgresTaskStore, db: psycopg.Connection
) -> None:
    """A third transaction holds the middle row: locked in input order, batch a would hold `low`
    and batch b `high`, and each would next need the other's; in id order they queue instead."""
    low, middle, high = sorted((new_task(f"t{n}") for n in range(3)), key=lambda t: t.id)
    await store(steps, low, middle, high)
    fill(db)

    async def both_waiting() -> bool:
        row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND wait_event_type = 'Lock'").fetchone()
        return row == (2,)

    async with uow() as holder:
        assert await holder.tasks.compare_and_set_many([(middle, claimed(middle, "holder"))])
        batches = [
            asyncio.ensure_future(claim_many(uow, order, worker))
            for order, worker in (([low, middle, high], "a"), ([high, middle, low], "b"))
        ]
        await eventually(both_waiting, "both batches to wait for a lock", timeout=10)
    # the holder rolled back: every row is free to whichever batch gets there first
    results = await asyncio.gather(*batches, return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    written_a, written_b = results
    assert isinstance(written_a, set) and isinstance(written_b, set)
    assert written_a.isdisjoint(written_b)
    assert written_a | written_b == {low.id, middle.id, high.id}
    for task in (low, middle, high):
        winner = "a" if task.id in written_a else "b"
        assert await fetch(uow, task.id) == claimed(task, winner)


async def test_many_concurrent_batches_over_shuffled_overlapping_ids_claim_each_task_once(
    uow: UowFactory, steps: PostgresTaskStore, db: psycopg.Connection
) -> None:
    tasks = [new_task(f"t{n}") for n in range(40)]
    await store(steps, *tasks)
    fill(db)
    rng = random.Random(7)
    orders = [rng.sample(tasks, 30) for _ in range(4)]  # pool of 4 connections

    results = await asyncio.gather(
        *(claim_many(uow, order, f"w{n}") for n, order in enumerate(orders)),
        return_exceptions=True,
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    written = [r for r in results if isinstance(r, set)]
    claimed_ids = [task_id for batch in written for task_id in batch]
    assert len(claimed_ids) == len(set(claimed_ids))  # nobody claimed a task twice
    assert set(claimed_ids) == {t.id for order in orders for t in order}
    rows = db.execute("SELECT count(*) FROM tasks WHERE status = 'in_progress'").fetchone()
    assert rows == (len(claimed_ids),)
