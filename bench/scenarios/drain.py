"""3. Drain rate: a backlog already in RabbitMQ, then 1 (or 2) workers with 0 s of work."""

from __future__ import annotations

import asyncio
import time

from bench import db
from bench.amqp import consume_and_ack
from bench.context import Context, Row
from bench.infra import BoxCpu, Stack, sandbox, wait_until, wait_workers
from bench.stats import rate

NO_WORK = {"TASKS_PROCESSING_MIN_SECONDS": "0", "TASKS_PROCESSING_MAX_SECONDS": "0"}


def drain(stack: Stack, count: int, workers: int) -> tuple[Row, float]:
    """The row, and tasks finished per second. The backlog is created in-process, published
    by the api's relay; the api stays up (idle once the outbox is empty) so that both rounds
    share it. CPU is counted from when the workers consume (start-up imports excluded)."""
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
    ), (count / span if span > 0 else 0.0)


def run(ctx: Context) -> list[Row]:
    count = ctx.sizes.backlog
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack:
        stack.api()
        rows, rates = zip(*(drain(stack, count, workers) for workers in (1, 2)), strict=True)
        stack.close()  # the baseline has the box to itself, as the workers had
        bare = asyncio.run(consume_and_ack(stack.rabbitmq_url, count, quorum=True))
    return [
        *rows,
        Row(
            "Baseline: bare consume + ack",
            f"{count:,} msgs, quorum queue, aio-pika, prefetch 100, no work",
            f"{bare:,.0f} msgs/s (drain / baseline: {rates[0] / bare:.2f} with 1 worker, "
            f"{rates[1] / bare:.2f} with 2)",
        ),
    ]
