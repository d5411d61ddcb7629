"""Errors leave the PostgreSQL task store and unit of work as the application's own, never as
psycopg's."""

from __future__ import annotations

import time

import psycopg
import pytest

from adapters.postgres.pool import make_pool
from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from application.model import NewTask
from domain.errors import InvalidInput, ServiceUnavailable
from domain.task import Task

from .builders import fetch, new_task, request_for
from .conftest import UowFactory


async def create(steps: PostgresTaskStore, task: Task, key: str | None = None) -> None:
    await steps.create(NewTask(task, request_for(task, key)))


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param(new_task("t" * 300), id="title-of-300-chars"),
        pytest.param(new_task(description="d" * 10_001), id="description-over-10000-chars"),
        pytest.param(new_task("nul \x00 in title"), id="nul-in-text"),
    ],
)
async def test_a_value_postgres_refuses_surfaces_as_invalid_input(
    steps: PostgresTaskStore, refused: Task
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await create(steps, refused)

    assert not isinstance(caught.value, psycopg.Error)
    assert "the database refused the value" in str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.Error)


async def test_the_pool_stays_usable_after_a_refused_value(
    uow: UowFactory, steps: PostgresTaskStore,
) -> None:
    refused, fine = new_task("t" * 300), new_task("fine")
    with pytest.raises(InvalidInput):
        await create(steps, refused)
    for _ in range(6):  # more than the pool holds: no connection was lost or left broken
        await create(steps, fine, key="same")

    assert await fetch(uow, fine.id) == fine


async def test_a_database_that_cannot_be_reached_raises_service_unavailable_in_time() -> None:
    pool = make_pool("postgresql://postgres@127.0.0.1:1/x", max_size=2)
    await pool.open(wait=False)
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="database unavailable"):
            async with PostgresUnitOfWork(pool, timeout=0.5):
                pytest.fail("got a connection to a closed port")
        elapsed = time.monotonic() - started
    finally:
        await pool.close()

    assert 0.4 < elapsed < 3
