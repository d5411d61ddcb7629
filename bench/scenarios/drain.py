"""3. Drain rate: a backlog already in RabbitMQ, then 1 (or 2) workers with 0 s of work."""

from __future__ import annotations

import asyncio
import time

from bench import db
from bench.context import Context, Row
from bench.infra import Stack, sandbox, wait_until
from bench.load import create_tasks
from bench.stats import rate

NO_WORK = {"TASKS_PROCESSING_MIN_SECONDS": "0", "TASKS_PROCESSING_MAX_SECONDS": "0"}


def drain(stack: Stack, count: int, workers: int, connections: int) -> Row:
    """The api stays up (idle once the outbox is empty) so that both rounds share it."""
    with stack.db() as conn:
        conn.execute("TRUNCATE tasks, task_history, dispatch_outbox")
        asyncio.run(create_tasks(stack.base_url, count, connections))
        wait_until(lambda: db.outbox(conn) == 0, 60 + count / 100, "an empty outbox")
        started = time.monotonic()
        procs = [stack.worker() for _ in range(workers)]
        wait_until(
            lambda: db.finished(conn) >= count,
            60 + count / 20,
            f"{count} tasks to finish",
            every=0.2,
        )
        wall = time.monotonic() - started
        span = db.span_seconds(conn, "started_at", "finished_at")
    for proc in procs:
        proc.stop()
    return Row(
        "Drain backlog",
        f"{workers} worker(s), {count:,} tasks, 0 s work",
        f"{rate(count, span, ' finished/s')} (first claim to last finish); "
        f"{wall:.1f} s incl. worker start-up",
    )


def run(ctx: Context) -> list[Row]:
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack:
        stack.api()
        return [
            drain(stack, ctx.sizes.backlog, workers, ctx.sizes.connections) for workers in (1, 2)
        ]
