"""CreateTask on PostgreSQL: concurrent requests share a statement but keep their own outcome."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from adapters.postgres.store import PostgresTaskStore
from adapters.system import SystemClock, Uuid7Source
from application.create import Created, CreateTask
from application.model import NewTaskRequest
from domain.errors import IdempotencyConflict, InvalidInput
from tests.unit.fakes import CountingSignal

from .builders import count_rows


@pytest.fixture
def create(steps: PostgresTaskStore) -> CreateTask:
    return CreateTask(steps, SystemClock(), Uuid7Source(), CountingSignal())


async def at_once(create: CreateTask, *requests: NewTaskRequest) -> list[Created | BaseException]:
    return await asyncio.gather(*(create(r) for r in requests), return_exceptions=True)


def all_created(results: list[Created | BaseException]) -> list[Created]:
    assert [r for r in results if not isinstance(r, Created)] == []
    return [r for r in results if isinstance(r, Created)]


def stored(db: psycopg.Connection) -> tuple[int, int, int]:
    """Tasks, history entries, outbox entries."""
    return (count_rows(db), count_rows(db, "task_history"), count_rows(db, "dispatch_outbox"))


async def test_concurrent_creates_each_get_their_task_history_and_dispatch(
    create: CreateTask, db: psycopg.Connection
) -> None:
    results = all_created(await at_once(
        create, *(NewTaskRequest(title=f"task {i}") for i in range(30))))

    assert [r.task.title for r in results] == [f"task {i}" for i in range(30)]
    assert not any(r.replayed for r in results)
    assert stored(db) == (30, 30, 30)


async def test_concurrent_creates_with_one_key_make_one_task(
    create: CreateTask, db: psycopg.Connection
) -> None:
    same = NewTaskRequest(title="once", idempotency_key="k")

    results = all_created(await at_once(create, *[same] * 5))

    assert sorted(r.replayed for r in results) == [False, True, True, True, True]
    assert len({r.task.id for r in results}) == 1
    assert stored(db) == (1, 1, 1)


async def test_one_key_with_different_bodies_at_once_is_one_task_and_conflicts(
    create: CreateTask, db: psycopg.Connection
) -> None:
    results = await at_once(create, *(NewTaskRequest(title=f"body {i}", idempotency_key="k")
                                      for i in range(3)))

    assert [type(r) for r in results] == [Created, IdempotencyConflict, IdempotencyConflict]
    assert stored(db) == (1, 1, 1)


async def test_a_refused_row_fails_alone_not_its_batch(
    create: CreateTask, db: psycopg.Connection
) -> None:
    requests = [NewTaskRequest(title="fine 1"), NewTaskRequest(title="t" * 300),
                NewTaskRequest(title="fine 2")]

    results = await at_once(create, *requests)

    assert [type(r) for r in results] == [Created, InvalidInput, Created]
    assert stored(db) == (2, 2, 2)
