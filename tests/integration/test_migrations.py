"""Migrations: applied once, safe from several replicas at once, database created if missing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from adapters.postgres.migrate import ensure_database, migrate
from adapters.postgres.statements import migrations
from tests.support.services import Services

VERSIONS = [path.stem for path in migrations()]


def ledger(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}


def database_exists(services: Services, name: str) -> bool:
    with psycopg.connect(services.database_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


@pytest.fixture
def missing_database_url(services: Services) -> Iterator[str]:
    """The URL of a database that does not exist yet on the test server; dropped afterwards."""
    url = make_conninfo(services.database_url, dbname=f"tasks_test_{uuid.uuid4().hex[:10]}")
    yield url
    services.drop_database(url)


def test_the_first_migration_is_the_tasks_schema() -> None:
    assert VERSIONS[0] == "0001_tasks"


async def test_migrate_applies_every_migration_once(empty_database_url: str) -> None:
    applied = await migrate(empty_database_url)

    assert applied == VERSIONS
    assert ledger(empty_database_url) == VERSIONS
    assert {"tasks", "task_history", "dispatch_outbox", "schema_migrations"} <= tables(
        empty_database_url)


async def test_migrating_again_applies_nothing(empty_database_url: str) -> None:
    await migrate(empty_database_url)

    assert await migrate(empty_database_url) == []
    assert ledger(empty_database_url) == VERSIONS


async def test_two_concurrent_migrations_both_succeed_and_apply_each_version_once(
    empty_database_url: str,
) -> None:
    results = await asyncio.gather(migrate(empty_database_url), migrate(empty_database_url))

    assert sorted(results) == [[], VERSIONS]
    assert ledger(empty_database_url) == VERSIONS


async def test_ensure_database_creates_a_missing_database(
    services: Services, missing_database_url: str
) -> None:
    name = psycopg.conninfo.conninfo_to_dict(missing_database_url)["dbname"]
    assert not database_exists(services, str(name))

    await ensure_database(missing_database_url)
    await ensure_database(missing_database_url)  # and leaves an existing one alone

    assert database_exists(services, str(name))


async def test_migrate_creates_the_database_first_when_it_is_missing(
    missing_database_url: str,
) -> None:
    assert await migrate(missing_database_url) == VERSIONS
    assert ledger(missing_database_url) == VERSIONS


async def test_replicas_migrating_a_missing_database_at_once_all_succeed(
    missing_database_url: str,
) -> None:
    results = await asyncio.gather(*(migrate(missing_database_url) for _ in range(4)),
                                   return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(results) == [[], [], [], VERSIONS]  # type: ignore[type-var]
    assert ledger(missing_database_url) == VERSIONS
