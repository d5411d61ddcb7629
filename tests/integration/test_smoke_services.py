"""The services the other integration tests rely on are really there."""

import psycopg


def test_a_fresh_database_has_the_migrated_schema(db: psycopg.Connection) -> None:
    tables = {r[0] for r in db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
    assert {"tasks", "task_history", "dispatch_outbox", "schema_migrations"} <= tables
