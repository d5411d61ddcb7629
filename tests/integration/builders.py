"""Tasks and requests built the way the use cases build them, plus shortcuts to store them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from adapters.postgres.uow import PostgresUnitOfWork
from application.model import Change, NewTask, NewTaskRequest
from application.ports import TaskStore
from domain.status import TaskSource, TaskStatus
from domain.task import Task, Transition

NOW = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)


def new_task(
    title: str = "resize image 42",
    *,
    at: datetime = NOW,
    source: TaskSource = TaskSource.API,
    description: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Task:
    return Task.create(
        id=uuid.uuid4(), title=title, description=description, payload=payload or {},
        source=source, now=at,
    )


def request_for(task: Task, key: str | None = None) -> NewTaskRequest:
    return NewTaskRequest(
        title=task.title, description=task.description, payload=task.payload,
        source=task.source, idempotency_key=key,
    )


def tasks_one_second_apart(count: int, start: datetime = NOW) -> list[Task]:
    return [new_task(f"task {i}", at=start + timedelta(seconds=i)) for i in range(count)]


def claimed(task: Task, worker: str = "worker-1", lease_until: datetime | None = None) -> Task:
    at = task.updated_at + timedelta(seconds=1)
    return task.claim(now=at, worker=worker, lease_until=lease_until or at + timedelta(seconds=30))


def replace(task: Task, **changes: Any) -> Task:
    return msgspec.structs.replace(task, **changes)


async def store(steps: TaskStore, *tasks: Task) -> None:
    """Create the tasks (as `new`, each with its `created` history row), one after the other,
    and take their dispatches out of the outbox, as the relay does once the broker confirmed."""
    entries = []
    for task in tasks:
        stored = await steps.create(NewTask(task, request_for(task)))
        assert stored.inserted and stored.entry is not None
        entries.append(stored.entry)
    await steps.remove(entries)


async def store_as(steps: TaskStore, *tasks: Task) -> None:
    """Create the tasks, then force each row to the given value (any status, lease or error),
    with a history row for that change."""
    fresh = [replace(t, status=TaskStatus.NEW, attempts=0, error=None, lease_owner=None)
             for t in tasks]
    await store(steps, *fresh)
    for old, new in zip(fresh, tasks, strict=True):
        assert await steps.apply(Change(old, new, Transition.between(old, new)))


def count_rows(db: psycopg.Connection, table: str = "tasks") -> int:
    row = db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


async def fetch(uow: Callable[[], PostgresUnitOfWork], task_id: uuid.UUID) -> Task | None:
    async with uow() as u:
        return await u.tasks.get(task_id)


#: One field of the caller's copy of a claimed task that no longer matches the row: each alone
#: must make a compare-and-set miss.
STALE_FIELDS = [
    pytest.param({"status": TaskStatus.NEW}, id="status"),
    pytest.param({"attempts": 2}, id="attempts"),
    pytest.param({"lease_owner": "worker-2"}, id="lease_owner"),
    pytest.param({"lease_owner": None}, id="lease_owner-null"),
]
