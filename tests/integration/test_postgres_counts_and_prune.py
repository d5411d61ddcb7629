"""Counts kept by triggers, and pruning, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg

from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.system import SystemClock, Uuid7Source
from application.create import CreateTask
from application.model import NewTaskRequest
from application.process import ProcessTask
from application.retention import PruneTasks
from application.stops import StopRequests
from domain.status import TaskStatus
from tests.unit.fakes import CountingSignal, FixedProcessor

from .builders import count_rows
from .conftest import UowFactory

S = TaskStatus


async def finish_all(pool: Any, ids: list[Any], result: str | None) -> None:
    process = ProcessTask(PostgresTaskStore(pool, hold=30.0, patient=True),
                          FixedProcessor(result), SystemClock(), "w1", timedelta(seconds=30),
                          StopRequests())
    await asyncio.gather(*(process(i) for i in ids))


async def test_counts_follow_every_change_and_cost_a_few_rows(
    uow: UowFactory, steps: PostgresTaskStore, pool: Any, db: psycopg.Connection,
) -> None:
    create = CreateTask(steps, SystemClock(), Uuid7Source(), CountingSignal())
    made = await asyncio.gather(*(create(NewTaskRequest(title=f"t{n}")) for n in range(12)))
    ids = [c.task.id for c in made]
    await finish_all(pool, ids[:5], None)
    await finish_all(pool, ids[5:8], "boom")

    async with uow() as u:
        counts = await u.tasks.counts()

    assert counts.by_status == {S.NEW: 4, S.IN_PROGRESS: 0, S.COMPLETED: 5, S.ERROR: 3}
    assert (counts.created, counts.finished) == (12, {S.COMPLETED: 5, S.ERROR: 3})
    assert counts.oldest_new_at is not None
    real = dict(db.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
    assert {s.value: n for s, n in counts.by_status.items() if n} == real
    assert count_rows(db, "task_counts") <= 16 * 8


async def test_prune_deletes_old_finished_tasks_their_history_and_their_counts(
    uow: UowFactory, steps: PostgresTaskStore, pool: Any, db: psycopg.Connection,
) -> None:
    create = CreateTask(steps, SystemClock(), Uuid7Source(), CountingSignal())
    made = await asyncio.gather(*(create(NewTaskRequest(title=f"t{n}")) for n in range(7)))
    ids = [c.task.id for c in made]
    await finish_all(pool, ids[:5], None)
    db.execute("UPDATE tasks SET finished_at = finished_at - interval '3 days' "
               "WHERE id = ANY(%s)", (ids[:4],))

    pruned = await PruneTasks(uow, SystemClock(), batch=3)(timedelta(days=2))

    assert (pruned.matched, pruned.deleted, pruned.more) == (4, 4, False)
    left = {r[0] for r in db.execute("SELECT id FROM tasks").fetchall()}
    assert left == set(ids[4:])
    assert {r[0] for r in db.execute("SELECT DISTINCT task_id FROM task_history")} == left
    async with uow() as u:
        counts = await u.tasks.counts()
    assert counts.by_status[S.COMPLETED] == 1 and counts.by_status[S.NEW] == 2


async def test_prune_skips_rows_in_use_and_only_one_pruner_works_at_a_time(
    pool: Any, db: psycopg.Connection, database_url: str,
) -> None:
    uow = lambda: PostgresUnitOfWork(pool)  # noqa: E731
    create = CreateTask(PostgresTaskStore(pool, hold=30.0), SystemClock(), Uuid7Source(),
                        CountingSignal())
    made = await asyncio.gather(*(create(NewTaskRequest(title=f"t{n}")) for n in range(3)))
    ids = [c.task.id for c in made]
    await finish_all(pool, ids, None)
    db.execute("UPDATE tasks SET finished_at = finished_at - interval '3 days'")
    prune = PruneTasks(uow, SystemClock())

    async with await psycopg.AsyncConnection.connect(database_url) as other:
        await other.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (ids[0],))
        skipped = await asyncio.wait_for(prune(timedelta(days=2)), 5)  # never waits for it
        assert skipped.deleted == 2
        await other.execute("SELECT pg_advisory_xact_lock(%s)", (0x7072756E65,))
        busy = await asyncio.wait_for(prune(timedelta(days=2)), 5)
        assert (busy.deleted, busy.more) == (0, True)  # another pruner holds the lock
    done = await prune(timedelta(days=2))
    assert done.deleted == 1 and count_rows(db) == 0
