"""Forward-only migrations from sql/migrations, one transaction each, under an advisory lock."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from adapters.diagnosis import ConnectionFailed, Diagnosis
from adapters.postgres.errors import SETTING, diagnose
from adapters.postgres.primary import primary_options
from adapters.postgres.statements import migrations
from adapters.timeouts import PG_CONNECT_SECONDS

log = structlog.get_logger(__name__)

#: Arbitrary constant shared by every replica: only one applies migrations at a time.
LOCK_ID = 0x7461736B73  # "tasks"

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def _connect(url: str, reported: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection, to the primary when `url` names several hosts (that is where
    databases and tables are made); failing to connect is a ConnectionFailed naming
    `reported`. No statement timeout: a migration may take its time."""
    try:
        conninfo = make_conninfo(url, connect_timeout=PG_CONNECT_SECONDS, **primary_options(url))
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise ConnectionFailed(diagnose(exc), reported) from exc


async def ensure_database(url: str) -> None:
    """Create the database named in `url` if it is missing and the role is allowed to."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConnectionFailed(diagnose(exc), url) from exc
    name = params.get("dbname") or params.get("user") or "postgres"
    try:
        conn = await _connect(url, url)
    except ConnectionFailed as exc:
        if not exc.diagnosis.detail.startswith(f'database "{name}" does not exist'):
            raise
    else:
        await conn.close()
        return
    admin = make_conninfo(url, dbname="postgres")  # every host of the URL, its maintenance db
    async with await _connect(admin, url) as conn:
        try:
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
            log.info("database_created", database=name)
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            # another replica was faster: DuplicateDatabase if it had committed before our
            # name check, UniqueViolation (pg_database_datname_index) if both got past it
            pass
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConnectionFailed(Diagnosis(
                SETTING, f'database "{name}" does not exist',
                f'database "{name}" does not exist and this user may not create it',
                f"create it (createdb {name}) or correct the database name", permanent=True,
            ), url) from exc


async def migrate(url: str) -> list[str]:
    """Apply what is not applied yet; returns the versions applied by this call.

    Raises ConnectionFailed (one line: the setting, what happened, the fix) when the database
    cannot be reached or does not let this user in."""
    await ensure_database(url)
    applied: list[str] = []
    async with await _connect(url, url) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            await conn.execute(_LEDGER)
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for path in migrations():
                version = path.stem
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                    )
                log.info("migration_applied", version=version)
                applied.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return applied
