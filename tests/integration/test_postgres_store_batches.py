"""What PostgresTaskStore's group commit promises, on the real database: calls that arrive
together share a statement and still each get their own outcome, as if they had come one
after the other; stores of several processes never deadlock; a patient store waits out an
outage."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from adapters.postgres.pool import make_pool
from adapters.postgres.repository import query
from adapters.postgres.store import PostgresTaskStore
from application.model import Change, Claimed, Dispatch, NewTask, Stored
from domain.errors import InvalidInput, ServiceUnavailable
from domain.status import TaskStatus
from domain.task import Task, Transition
from tests.support.proxy import Proxy

from .builders import NOW, claimed, count_rows, new_task, request_for, store
from .waiting import eventually

HOLD = 30.0
#: the store's statements, by their text
NAMES = {query(name).as_string(None): name for name in (
    "create_tasks", "select_by_keys", "claim_tasks", "apply_changes", "select_tasks",
    "outbox_take", "outbox_remove", "outbox_release")}


class CountingPool:
    """The test pool, noting the name of every statement run through it."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.ran: Counter[str] = Counter()

    @asynccontextmanager
    async def connection(self, timeout: float) -> AsyncIterator[Any]:
        async with self._pool.connection(timeout=timeout) as conn:
            yield _Counting(conn, self.ran)


class _Counting:
    def __init__(self, conn: Any, ran: Counter[str]) -> None:
        self._conn = conn
        self._ran = ran

    async def execute(self, statement: Any, params: Any = None) -> Any:
        self._ran[NAMES.get(statement.as_string(None), "other")] += 1
        return await self._conn.execute(statement, params)


@pytest.fixture
def counted(pool: Any) -> CountingPool:
    return CountingPool(pool)


def on(pool: Any, **options: Any) -> PostgresTaskStore:
    return PostgresTaskStore(pool, hold=HOLD, **options)


def fill(db: psycopg.Connection, rows: int = 5000) -> None:
    """Enough analysed rows that the planner drives a statement from the batch through the
    primary key, in the batch's order: a statement that locked rows in that order could
    deadlock."""
    db.execute("INSERT INTO tasks (id, title, status, source, created_at, updated_at) "
               "SELECT gen_random_uuid(), 'filler', 'completed', 'api', now(), now() "
               "FROM generate_series(1, %s)", (rows,))
    db.execute("ANALYZE tasks")


def rows_of(db: psycopg.Connection, task_id: uuid.UUID) -> tuple[int, int]:
    """History rows and outbox entries of one task."""
    found = db.execute(
        "SELECT (SELECT count(*) FROM task_history WHERE task_id = %(id)s),"
        " (SELECT count(*) FROM dispatch_outbox WHERE task_id = %(id)s)", {"id": task_id},
    ).fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


async def create_all(steps: PostgresTaskStore, tasks: list[Task], keys: list[str | None]
                     ) -> list[Stored | BaseException]:
    return await asyncio.gather(
        *(steps.create(NewTask(t, request_for(t, k))) for t, k in zip(tasks, keys, strict=True)),
        return_exceptions=True)


def at(seconds: float) -> tuple[Any, Any]:
    """(now, lease until) for a claim `seconds` after NOW."""
    now = NOW + timedelta(seconds=seconds)
    return now, now + timedelta(seconds=30)


# create


async def test_concurrent_creates_share_a_statement_and_each_get_task_history_and_dispatch(
    counted: CountingPool, db: psycopg.Connection,
) -> None:
    tasks = [new_task(f"task {i}") for i in range(30)]

    results = await create_all(on(counted), tasks, [None, "a", None, "b", "c", *[None] * 25])

    assert all(isinstance(r, Stored) for r in results)
    stored = [r for r in results if isinstance(r, Stored)]
    assert [s.task for s in stored] == tasks  # in the callers' order
    assert all(s.inserted for s in stored)
    assert len({s.entry for s in stored}) == 30
    for task in tasks:
        assert rows_of(db, task.id) == (1, 1)
    assert (count_rows(db), count_rows(db, "task_history"), count_rows(db, "dispatch_outbox")
            ) == (30, 30, 30)
    # the calls of one turn of the event loop go together, and no key was taken already
    assert counted.ran == {"create_tasks": 1}


async def test_concurrent_creates_with_one_key_make_one_task(
    counted: CountingPool, db: psycopg.Connection,
) -> None:
    first, again, other = new_task("same"), new_task("same"), new_task("other")

    results = await create_all(on(counted), [first, again, other], ["k", "k", "k2"])

    assert all(isinstance(r, Stored) for r in results)
    stored = [r for r in results if isinstance(r, Stored)]
    assert [s.inserted for s in stored] == [True, False, True]
    assert stored[1].task == first and stored[1].entry is None
    assert stored[1].fingerprint == stored[0].fingerprint == request_for(first, "k").fingerprint()
    assert (count_rows(db), count_rows(db, "task_history"), count_rows(db, "dispatch_outbox")
            ) == (2, 2, 2)
    assert counted.ran == {"create_tasks": 1, "select_by_keys": 1}


async def test_many_concurrent_creates_with_one_key_make_one_task(
    steps: PostgresTaskStore, db: psycopg.Connection,
) -> None:
    tasks = [new_task("once") for _ in range(20)]

    results = await create_all(steps, tasks, ["k"] * 20)

    stored = [r for r in results if isinstance(r, Stored)]
    assert len(stored) == 20
    assert sum(s.inserted for s in stored) == 1
    assert all(s.task == tasks[0] for s in stored)
    assert (count_rows(db), count_rows(db, "task_history"), count_rows(db, "dispatch_outbox")
            ) == (1, 1, 1)


async def test_keys_taken_earlier_return_the_stored_tasks_among_new_ones(
    steps: PostgresTaskStore,
) -> None:
    earlier = new_task("earlier")
    await steps.create(NewTask(earlier, request_for(earlier, "taken")))
    fresh, replay = new_task("fresh"), new_task("replay, other body")

    results = await create_all(steps, [fresh, replay], ["new-key", "taken"])

    stored = [r for r in results if isinstance(r, Stored)]
    assert [(s.task, s.inserted) for s in stored] == [(fresh, True), (earlier, False)]
    assert stored[1].fingerprint == request_for(earlier, "taken").fingerprint()


async def test_a_row_the_database_refuses_fails_only_its_own_call(
    counted: CountingPool, db: psycopg.Connection,
) -> None:
    """A title over 255 characters, built past the domain's checks: the CHECK refuses it."""
    fine, refused, also_fine = new_task("fine 1"), new_task("t" * 300), new_task("fine 2")

    results = await create_all(on(counted), [fine, refused, also_fine], [None, None, None])

    assert [type(r) for r in results] == [Stored, InvalidInput, Stored]
    assert "the database refused the value" in str(results[1])
    assert (count_rows(db), count_rows(db, "task_history"), count_rows(db, "dispatch_outbox")
            ) == (2, 2, 2)
    assert rows_of(db, fine.id) == rows_of(db, also_fine.id) == (1, 1)
    assert counted.ran == {"create_tasks": 1 + 3}  # the shared one failed: then each alone


async def test_two_processes_creating_the_same_keys_in_opposite_orders_both_succeed(
    pool: Any, db: psycopg.Connection, database_url: str,
) -> None:
    """A third transaction holds key `m`, so that each store's statement waits: one on `m`,
    the other on the first key of the first. Were keys inserted in the callers' order, once
    `m` is free each statement would next need a key the other holds."""
    async def both_waiting() -> bool:
        row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND wait_event_type = 'Lock'").fetchone()
        return row == (2,)

    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute(
            "INSERT INTO tasks (id, title, status, source, created_at, updated_at,"
            " idempotency_key) VALUES (%s, 'm', 'new', 'api', now(), now(), 'm')",
            (uuid.uuid4(),))
        batches = [asyncio.ensure_future(create_all(on(pool), [new_task(k) for k in keys],
                                                    list(keys)))
                   for keys in (("a", "m", "b"), ("b", "m", "a"))]
        await eventually(both_waiting, "both statements to wait for a key", timeout=10)
        await holder.rollback()  # key m is free
    results = await asyncio.gather(*batches)

    assert [r for batch in results for r in batch if isinstance(r, BaseException)] == []
    assert count_rows(db) == 3
    made = [r for batch in results for r in batch if isinstance(r, Stored) and r.inserted]
    assert sorted(s.task.title for s in made) == ["a", "b", "m"]


# claim


async def test_many_concurrent_claims_of_one_task_in_one_store_claim_it_once(
    counted: CountingPool, db: psycopg.Connection, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)
    now, until = at(1)
    mine = on(counted)

    results = await asyncio.gather(*(mine.claim(task.id, worker="w1", now=now, lease_until=until)
                                     for _ in range(20)))

    assert isinstance(results[0], Claimed)  # the first asker
    assert results[0].task == task.claim(now=now, worker="w1", lease_until=until)
    assert results[1:] == [TaskStatus.IN_PROGRESS] * 19
    assert rows_of(db, task.id) == (2, 0)
    assert counted.ran == {"claim_tasks": 1}


async def test_many_processes_claiming_one_task_at_once_claim_it_once(
    pool: Any, db: psycopg.Connection, steps: PostgresTaskStore,
) -> None:
    """Each worker process has its own store: their statements race in the database."""
    task = new_task()
    await store(steps, task)
    now, until = at(1)
    workers = [on(pool) for _ in range(12)]

    results = await asyncio.gather(*(w.claim(task.id, worker=f"w{n}", now=now, lease_until=until)
                                     for n, w in enumerate(workers)))

    won = [n for n, r in enumerate(results) if isinstance(r, Claimed)]
    assert len(won) == 1
    assert [r for r in results if not isinstance(r, Claimed)] == [TaskStatus.IN_PROGRESS] * 11
    got = await steps.get(task.id)
    assert got == task.claim(now=now, worker=f"w{won[0]}", lease_until=until)
    assert rows_of(db, task.id) == (2, 0)


async def test_claims_of_several_workers_through_one_store_claim_the_task_once(
    steps: PostgresTaskStore, db: psycopg.Connection,
) -> None:
    task = new_task()
    await store(steps, task)
    now, until = at(1)

    results = await asyncio.gather(*(steps.claim(task.id, worker=f"w{n}", now=now,
                                                 lease_until=until) for n in range(5)))

    assert isinstance(results[0], Claimed) and results[0].task.lease_owner == "w0"
    assert results[1:] == [TaskStatus.IN_PROGRESS] * 4
    assert rows_of(db, task.id) == (2, 0)


async def test_a_claim_made_for_one_worker_of_a_batch_is_not_handed_to_another(
    steps: PostgresTaskStore,
) -> None:
    """w0 asks for both tasks, w1 for the second in between: the second is w0's, and w1's
    caller must hear that it is taken, not get w0's claim."""
    first, second = new_task("first"), new_task("second")
    await store(steps, first, second)
    now, until = at(1)

    results = await asyncio.gather(
        steps.claim(first.id, worker="w0", now=now, lease_until=until),
        steps.claim(second.id, worker="w1", now=now, lease_until=until),
        steps.claim(second.id, worker="w0", now=now, lease_until=until))

    assert results == [Claimed(first.claim(now=now, worker="w0", lease_until=until), NOW),
                       TaskStatus.IN_PROGRESS,
                       Claimed(second.claim(now=now, worker="w0", lease_until=until), NOW)]
    got = await steps.get(second.id)
    assert got is not None and got.lease_owner == "w0"


@pytest.mark.parametrize("seed", [7, 8, 9])
async def test_concurrent_claims_over_shuffled_overlapping_ids_claim_each_task_once(
    pool: Any, db: psycopg.Connection, steps: PostgresTaskStore, seed: int,
) -> None:
    """Four worker processes, each asking at once for 30 of the same 40 tasks in its own
    order: no deadlock (the statement locks rows in id order), each task claimed once."""
    tasks = [new_task(f"t{n}") for n in range(40)]
    await store(steps, *tasks)
    fill(db)
    rng = random.Random(seed)
    orders = [rng.sample(tasks, 30) for _ in range(4)]  # the pool holds 4 connections
    now, until = at(1)

    async def claims(worker: str, order: list[Task]) -> list[Any]:
        mine = on(pool)
        return await asyncio.gather(*(mine.claim(t.id, worker=worker, now=now,
                                                 lease_until=until) for t in order))

    results = await asyncio.gather(*(claims(f"w{n}", order) for n, order in enumerate(orders)),
                                   return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    won = [(n, r.task.id) for n, batch in enumerate(results) if isinstance(batch, list)
           for r in batch if isinstance(r, Claimed)]
    claimed_ids = [task_id for _, task_id in won]
    assert len(claimed_ids) == len(set(claimed_ids))  # nobody claimed a task twice
    assert set(claimed_ids) == {t.id for order in orders for t in order}
    for n, task_id in won:
        got = await steps.get(task_id)
        assert got is not None and (got.lease_owner, got.attempts) == (f"w{n}", 1)
    row = db.execute("SELECT count(*) FROM task_history WHERE to_status = 'in_progress'"
                     ).fetchone()
    assert row == (len(claimed_ids),)


# apply


def step(old: Task, new: Task) -> Transition:
    return Transition.between(old, new, worker="w1")


async def test_two_changes_of_one_task_in_one_batch_apply_as_if_one_after_the_other(
    counted: CountingPool, db: psycopg.Connection, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)
    working = claimed(task, "w1")
    done = working.complete(now=working.updated_at + timedelta(seconds=1))
    mine = on(counted, linger=0.05)

    results = await asyncio.gather(mine.apply(Change(task, working, step(task, working))),
                                   mine.apply(Change(working, done, step(working, done))))

    assert results == [True, True]
    assert await steps.get(task.id) == done
    history = db.execute("SELECT from_status, to_status FROM task_history WHERE task_id = %s"
                         " ORDER BY id", (task.id,)).fetchall()
    assert history == [(None, "new"), ("new", "in_progress"), ("in_progress", "completed")]
    assert counted.ran == {"apply_changes": 2}  # one batch, in two rounds


async def test_two_changes_from_the_same_value_in_one_batch_write_only_the_first(
    counted: CountingPool, db: psycopg.Connection, steps: PostgresTaskStore,
) -> None:
    task = new_task()
    await store(steps, task)
    working = claimed(task, "w1")
    assert await steps.apply(Change(task, working, step(task, working)))
    back = working.release(now=working.updated_at + timedelta(seconds=1))
    done = working.complete(now=working.updated_at + timedelta(seconds=1))
    mine = on(counted, linger=0.05)

    results = await asyncio.gather(
        mine.apply(Change(working, back, step(working, back), Dispatch(task.id, 2, "first"))),
        mine.apply(Change(working, done, step(working, done), Dispatch(task.id, 9, "second"))))

    assert results == [True, False]
    assert await steps.get(task.id) == back
    last = db.execute("SELECT to_status FROM task_history WHERE task_id = %s ORDER BY id DESC"
                      " LIMIT 1", (task.id,)).fetchone()
    assert last == ("new",) and rows_of(db, task.id) == (3, 1)
    assert list((await steps.take(10, HOLD)).values()) == [Dispatch(task.id, 2, "first")]


async def test_changes_of_many_tasks_arriving_together_share_one_statement(
    counted: CountingPool, db: psycopg.Connection, steps: PostgresTaskStore,
) -> None:
    tasks = [new_task(f"t{n}") for n in range(10)]
    await store(steps, *tasks)
    stale = tasks[3]
    changes = [Change(t, claimed(t), step(t, claimed(t))) for t in tasks]
    changes[3] = Change(claimed(stale), claimed(stale).complete(now=NOW),
                        step(claimed(stale), claimed(stale).complete(now=NOW)))

    mine = on(counted, linger=0.05)
    results = await asyncio.gather(*(mine.apply(c) for c in changes))

    assert results == [n != 3 for n in range(10)]
    assert await steps.get(stale.id) == stale
    assert rows_of(db, stale.id) == (1, 0)
    assert counted.ran == {"apply_changes": 1}


# outages


async def test_a_patient_store_waits_out_a_database_it_cannot_reach_then_succeeds(
    database_url: str, steps: PostgresTaskStore, db: psycopg.Connection,
) -> None:
    """The worker's store: its steps have nobody to answer 503 to. The pool cannot connect at
    first (every connection is reset); once the database is reachable, both calls go through."""
    waiting = new_task("waiting to be claimed")
    await store(steps, waiting)
    fresh = new_task("created in the outage")
    with Proxy.in_front_of(database_url) as proxy:
        proxy.reset()
        pool = make_pool(proxy.url_for(database_url), max_size=2)
        await pool.open(wait=False)
        try:
            with pytest.raises(ServiceUnavailable):  # an impatient store says so
                await on(pool).get(waiting.id)
            patient = on(pool, patient=True)
            now, until = at(1)
            calls = asyncio.gather(
                patient.create(NewTask(fresh, request_for(fresh))),
                patient.claim(waiting.id, worker="w1", now=now, lease_until=until))
            await asyncio.sleep(1.0)
            assert not calls.done()  # still waiting, not failed
            proxy.pass_through()
            created, claim = await asyncio.wait_for(calls, 60)
        finally:
            await pool.close()

    assert created.inserted and created.task == fresh
    assert isinstance(claim, Claimed) and claim.task.lease_owner == "w1"
    assert rows_of(db, fresh.id) == (1, 1)
    assert rows_of(db, waiting.id) == (2, 0)
