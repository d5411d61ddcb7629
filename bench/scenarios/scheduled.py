"""12. Scheduled tasks while they wait: the CPU the API, the worker and PostgreSQL spend over
the same quiet window with none scheduled, then with `scheduled_tasks` scheduled an hour
ahead (made by POST /tasks/batch); the relay's look for due dispatches (EXPLAIN ANALYZE);
and how many messages sit in the dispatch queue for them (none: a scheduled task's dispatch
waits in the outbox)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from adapters.postgres.statements import statement
from adapters.queues import DISPATCH
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from bench.context import Context, Row
from bench.infra import Stack, queue_counts, sandbox, wait_workers
from bench.parts import cpu_of, postgres_pids, session
from bench.scenarios.bulk import BATCH, post_batches


def _quiet_cpu(stack: Stack, conn: psycopg.Connection[tuple], seconds: float) -> str:
    """CPU seconds per minute of the service's processes and of PostgreSQL's, over a window
    with no request."""
    service = [pid for proc in stack.procs for pid in session(proc.pid)]
    server = postgres_pids(conn)
    before = cpu_of(service), cpu_of(server)
    began = time.monotonic()
    time.sleep(seconds)
    per_minute = 60 / (time.monotonic() - began)
    return (f"API + worker {per_minute * (cpu_of(service) - before[0]):.2f} s, PostgreSQL "
            f"{per_minute * (cpu_of(server) - before[1]):.2f} s of CPU a minute")


def run(ctx: Context) -> list[Row]:
    count, quiet = ctx.sizes.scheduled_tasks, ctx.sizes.scheduled_quiet_seconds
    with sandbox(ctx.admin, ctx.log_dir) as stack, stack.db() as conn:
        stack.api()
        wait_workers(stack, 1, procs=[stack.worker()])
        none = _quiet_cpu(stack, conn, quiet)
        post_batches(stack.base_url, max(1, count // BATCH), delay_seconds=3600)
        conn.execute("ANALYZE dispatch_outbox")
        waiting = int(conn.execute("SELECT count(*) FROM dispatch_outbox").fetchone()[0])
        time.sleep(5)  # the batches' own work (autovacuum, the relay's first looks) settles
        some = _quiet_cpu(stack, conn, quiet)
        top = _relay_look(conn)
        pages = top["Plan"].get("Shared Hit Blocks", 0) + top["Plan"].get("Shared Read Blocks", 0)
        queued, _ = queue_counts(stack.rabbitmq_url, DISPATCH)
    return [
        Row("Scheduled: quiet window", f"0 tasks scheduled, {quiet:g} s, 1 API, 1 worker", none),
        Row("Scheduled: quiet window", f"{waiting:,} tasks scheduled 1 h ahead, {quiet:g} s",
            some),
        Row("Scheduled: the relay's look for due ones", f"{waiting:,} waiting in the outbox",
            f"{top['Execution Time']:.3f} ms, {pages} pages read (EXPLAIN ANALYZE); "
            f"{queued} messages in the dispatch queue"),
    ]


def _relay_look(conn: psycopg.Connection[tuple]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the relay's own `outbox_take` (sql/queries.sql), rolled back."""
    explain = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}").format(
        statement("outbox_take"))
    with conn.transaction(force_rollback=True):
        # the relay takes up to 500 (RelayDispatches' batch), holding them OUTBOX_HOLD_SECONDS
        [plan] = conn.execute(explain, {"hold": OUTBOX_HOLD_SECONDS, "limit": 500}).fetchone()
    return dict(plan[0])
