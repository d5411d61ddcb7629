"""Forward-only migrations from sql/migrations, one transaction each, under an advisory lock."""

from __future__ import annotations

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from adapters.postgres.statements import migrations

log = structlog.get_logger(__name__)

#: Arbitrary constant shared by every replica: only one applies migrations at a time.
LOCK_ID = 0x7461736B73  # "tasks"

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def ensure_database(url: str) -> None:
    """Create the database named in `url` if it is missing and the role is allowed to."""
    params = conninfo_to_dict(url)
    name = params.get("dbname") or params.get("user") or "postgres"
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        if f'"{name}" does not exist' not in str(exc):
            raise
    else:
        await conn.close()
        return
    admin = make_conninfo(url, dbname="postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        try:
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
            log.info("database_created", database=name)
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            # another replica was faster: DuplicateDatabase if it had committed before our
            # name check, UniqueViolation (pg_database_datname_index) if both got past it
            pass


async def migrate(url: str) -> list[str]:
    """Apply what is not applied yet; returns the versions applied by this call."""
    await ensure_database(url)
    applied: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
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
