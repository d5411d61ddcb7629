"""3. Drain rate: a backlog already in RabbitMQ, then 1 (or 2) workers with 0 s of work."""

from __future__ import annotations

import asyncio
import time

from bench import db
from bench.context import Context, Row
from bench.infra import BoxCpu, Stack, sandbox, wait_until, wait_workers
from bench.stats import rate

NO_WORK = {"TASKS_PROCESSING_MIN_SECONDS": "0", "TASKS_PROCESSING_MAX_SECONDS": "0"}


def drain(stack: Stack, count: int, workers: int) -> Row:
    """The backlog is created in-process, published by the api's relay; the api stays up
    (idle once the outbox is empty) so that both rounds share it."""
    with stack.db() as conn:
        conn.execute("TRUNCATE tasks, task_history, dispatch_outbox")
        asyncio.run(db.preload(stack.database_url, count))
        wait_until(lambda: db.outbox(conn) == 0, 60 + count / 100, "an empty outbox")
        started = time.monotonic()
        procs = [stack.worker() for _ in range(workers)]
        wait_workers(stack, workers, procs=procs)  # CPU counted from here: not the start-up imports
        box, cpu = BoxCpu.now(), sum(p.cpu_seconds() for p in procs)
        wait_until(
            lambda: db.finished(conn) >= count,
            60 + count / 20,
            f"{count} tasks to finish",
            every=0.2,
        )
        wall = time.monotonic() - started
        box, cpu = BoxCpu.now() - box, sum(p.cpu_seconds() for p in procs) - cpu
        span = db.span_seconds(conn, "started_at", "finished_at")
    for proc in procs:
        proc.stop()
    return Row(
        "Drain backlog",
        f"{workers} worker(s), {count:,} tasks, 0 s work",
        f"{rate(count, span, ' finished/s')} (first claim to last finish); "
        f"{wall:.1f} s incl. worker start-up; worker CPU {1000 * cpu / count:.2f} ms/task, "
        f"{box.per_task(count)}",
    )


def run(ctx: Context) -> list[Row]:
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack:
        stack.api()
        return [drain(stack, ctx.sizes.backlog, workers) for workers in (1, 2)]
