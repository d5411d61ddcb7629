"""Whether the database's schema is the one this code was written for (the migration ledger)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import scalar_row

from adapters.postgres.statements import migrations, statement

NOT_MIGRATED = "not migrated (run tasks migrate)"
#: What a request that needs a table the schema does not have yet is answered.
REQUEST_NOT_MIGRATED = f"database {NOT_MIGRATED}"


@functools.cache
def code_versions() -> tuple[str, ...]:
    """The migrations this code ships, oldest first (file names without `.sql`)."""
    return tuple(path.stem for path in migrations())


def verdict(applied: Collection[str], known: Sequence[str]) -> str | None:
    """None when the database has exactly the migrations the code knows; else what is wrong.

    A version the code does not know means a newer release migrated this database: this code
    may misread it, so it is refused too (with the opposite fix).
    """
    unknown = sorted(set(applied) - set(known))
    if unknown:
        return (f"database schema is newer than this code (it has {unknown[-1]}, this code "
                f"knows up to {known[-1]}): upgrade the service")
    if not applied:
        return NOT_MIGRATED
    if set(known) - set(applied):
        return f"{NOT_MIGRATED}: the schema is at {max(applied)}, this code needs {known[-1]}"
    return None


async def schema_problem(conn: AsyncConnection[Any]) -> str | None:
    """Read the ledger on `conn` (a missing ledger is an unmigrated database)."""
    try:
        async with conn.cursor(row_factory=scalar_row) as cur:
            await cur.execute(statement("schema_versions"))
            applied = await cur.fetchall()
    except psycopg.errors.UndefinedTable:
        await conn.rollback()
        return NOT_MIGRATED
    return verdict(applied, code_versions())
