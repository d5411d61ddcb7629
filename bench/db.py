"""What the benchmarks read from, and bulk-load into, a sandbox database."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from dependency_injector import providers

from adapters.postgres.store import PostgresTaskStore
from application.model import NewTaskRequest
from entrypoints.container import build_container, init_resources, shutdown_resources
from entrypoints.logging import configure_logging
from entrypoints.settings import Settings

FINAL = "status IN ('completed', 'error')"


def scalar(conn: psycopg.Connection[tuple], query: str, params: object = None) -> int:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row and row[0] is not None else 0


def tasks(conn: psycopg.Connection[tuple], where: str = "true") -> int:
    return scalar(conn, f"SELECT count(*) FROM tasks WHERE {where}")


def finished(conn: psycopg.Connection[tuple]) -> int:
    return tasks(conn, FINAL)


def outbox(conn: psycopg.Connection[tuple]) -> int:
    return scalar(conn, "SELECT count(*) FROM dispatch_outbox")


def span_seconds(
    conn: psycopg.Connection[tuple], start: str, end: str, where: str = "true"
) -> float:
    """Seconds from min(`start`) to max(`end`) over the tasks matching `where`."""
    row = conn.execute(
        f"SELECT extract(epoch FROM max({end}) - min({start})) FROM tasks WHERE {where}"
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


_BULK = """
INSERT INTO tasks (id, title, payload, status, attempts, error, source,
                   created_at, updated_at, started_at, finished_at)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0')
        || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,  -- UUIDv7-shaped
       'bulk-' || i, '{}'::jsonb, st,
       CASE WHEN st = 'new' THEN 0 ELSE 1 END,
       CASE WHEN st = 'error' THEN 'emulated failure' END,
       'api', ts, ts,
       CASE WHEN st <> 'new' THEN ts + interval '1 second' END,
       CASE WHEN st IN ('completed', 'error') THEN ts + interval '8 seconds' END
FROM (SELECT i, md5(i::text) AS h,
             now() - %(age)s::interval - i * %(step)s::interval AS ts,
             (%(statuses)s::text[])[1 + i %% cardinality(%(statuses)s::text[])] AS st
      FROM generate_series(1, %(count)s) AS i) AS rows
"""
ALL = ("new", "in_progress", "completed", "error")

_HISTORY = """
INSERT INTO task_history (task_id, from_status, to_status, at, attempt, worker, error)
SELECT id, NULL, 'new', created_at, 0, NULL, NULL FROM tasks
UNION ALL SELECT id, 'new', 'in_progress', started_at, 1, 'bulk', NULL FROM tasks
          WHERE started_at IS NOT NULL
UNION ALL SELECT id, 'in_progress', status, finished_at, 1, 'bulk', error FROM tasks
          WHERE finished_at IS NOT NULL
"""


def bulk_load(conn: psycopg.Connection[tuple], count: int, days: float = 30,
              statuses: tuple[str, ...] = ALL, age: float = 0, history: bool = False) -> None:
    """`count` rows straight into `tasks`: `statuses` in turn, created_at spread evenly over
    the `days` before `age` days ago, payload '{}', source 'api'; with `history`, each row's
    history too (created, started, finished as its timestamps say); then ANALYZE."""
    step = timedelta(days=days) / count
    conn.execute(_BULK, {"step": max(step, timedelta(milliseconds=1)), "count": count,
                         "age": timedelta(days=age), "statuses": list(statuses)})
    if history:
        with conn.transaction():  # the rows it references were just inserted: no FK check
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(_HISTORY)
        conn.execute("ANALYZE task_history")
    conn.execute("ANALYZE tasks")


async def preload(database_url: str, count: int, prefix: str = "bench") -> None:
    """`count` tasks through the real bulk create (CreateTasks, as `POST /tasks/batch` does)
    on PostgreSQL, in batches of 1,000, called in-process and wired by the service's own
    container: rows, history and outbox exactly as the API writes them, far faster than HTTP
    from a Python client. This process publishes nothing (it runs no relay), so its outbox
    entries are not held for it: the relay of a running `tasks api` or `tasks worker`
    publishes them at once."""
    configure_logging(level="WARNING")
    container = build_container(Settings(database_url=database_url, db_pool_size=4))
    container.store.override(providers.Singleton(PostgresTaskStore, container.pool, hold=0.0))
    await init_resources(container)
    try:
        create = container.create_tasks()
        for first in range(0, count, 1000):
            await create([NewTaskRequest(title=f"{prefix}-{i}")
                          for i in range(first, min(first + 1000, count))], None)
    finally:
        await shutdown_resources(container)
