"""The PostgreSQL health probe, the unit of work and the task store against databases at each
schema version."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import PostgresProbe, make_pool
from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from domain.errors import ServiceUnavailable
from tests.support.urls import postgres_refused

RUN_MIGRATE = "not migrated (run tasks migrate)"


async def opened(url: str) -> AsyncConnectionPool[Any]:
    pool = make_pool(url, max_size=2)
    await pool.open(wait=True, timeout=10)
    return pool


@pytest.fixture
async def empty_pool(empty_database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = await opened(empty_database_url)
    yield pool
    await pool.close()


async def probe_says(pool: AsyncConnectionPool[Any]) -> str:
    try:
        await PostgresProbe(pool).check()
    except ServiceUnavailable as exc:
        return str(exc)
    return "ok"


async def test_a_migrated_database_is_ready(pool: AsyncConnectionPool[Any]) -> None:
    assert await probe_says(pool) == "ok"


async def test_an_empty_database_is_not_migrated(empty_pool: AsyncConnectionPool[Any]) -> None:
    assert await probe_says(empty_pool) == RUN_MIGRATE
    assert await probe_says(empty_pool) == RUN_MIGRATE  # and the connection stays usable


async def test_a_ledger_missing_the_codes_migrations_is_not_migrated(
    pool: AsyncConnectionPool[Any], db: psycopg.Connection
) -> None:
    db.execute("DELETE FROM schema_migrations")
    assert await probe_says(pool) == RUN_MIGRATE


async def test_a_schema_newer_than_the_code_is_refused(
    pool: AsyncConnectionPool[Any], db: psycopg.Connection
) -> None:
    db.execute("INSERT INTO schema_migrations (version) VALUES ('9999_from_a_newer_release')")
    said = await probe_says(pool)
    assert said.startswith("database schema is newer than this code (")
    assert "9999_from_a_newer_release" in said
    assert said.endswith("upgrade the service")


async def test_an_unreachable_database_is_named_with_its_reason() -> None:
    pool = make_pool(postgres_refused(), max_size=2)
    await pool.open(wait=False)
    try:
        assert await probe_says(pool) == "connection refused (check TASKS_DATABASE_URL)"
    finally:
        await pool.close()


async def in_a_unit_of_work(pool: AsyncConnectionPool[Any]) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        await uow.tasks.get(uuid.uuid4())


async def through_the_task_store(pool: AsyncConnectionPool[Any]) -> None:
    await PostgresTaskStore(pool, hold=30.0).get(uuid.uuid4())


@pytest.mark.parametrize("read", [in_a_unit_of_work, through_the_task_store],
                         ids=["unit-of-work", "task-store"])
async def test_a_request_on_an_unmigrated_database_is_a_503_saying_run_tasks_migrate(
    empty_pool: AsyncConnectionPool[Any],
    read: Callable[[AsyncConnectionPool[Any]], Awaitable[None]],
) -> None:
    for _ in range(5):  # more than the pool holds: every connection goes back usable
        with pytest.raises(ServiceUnavailable) as caught:
            await read(empty_pool)
        assert str(caught.value) == "database not migrated (run tasks migrate)"
        assert isinstance(caught.value.__cause__, psycopg.errors.UndefinedTable)
