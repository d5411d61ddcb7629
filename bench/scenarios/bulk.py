"""11. Bulk create: POST /tasks/batch of 1,000 tasks, one after the other, then the drain of
the backlog made that way by one worker, against the bare quorum consumer of the same run."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench import db
from bench.amqp import consume_and_ack
from bench.context import Context, Row
from bench.infra import BoxCpu, sandbox, wait_until, wait_workers
from bench.scenarios.drain import NO_WORK
from bench.stats import p50_p99, rate

BATCH = 1000


def post_batches(base_url: str, batches: int, **fields: object) -> list[float]:
    """`batches` POST /tasks/batch of BATCH tasks each (every task with `fields`), one after
    the other; the seconds each took."""
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for b in range(batches):
            body = {"tasks": [{"title": f"bulk-{b}-{i}", **fields} for i in range(BATCH)]}
            sent = time.perf_counter()
            answer = http.post("/tasks/batch", json=body)
            latencies.append(time.perf_counter() - sent)
            if answer.status_code != 201:
                raise RuntimeError(f"batch {b}: {answer.status_code} {answer.text[:200]}")
    return latencies


def run(ctx: Context) -> list[Row]:
    count = ctx.sizes.bulk_tasks
    batches = max(1, count // BATCH)
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack, stack.db() as conn:
        stack.api()
        began = time.perf_counter()
        latencies = post_batches(stack.base_url, batches)
        wall = time.perf_counter() - began
        created = batches * BATCH
        wait_until(lambda: db.outbox(conn) == 0, 60 + created / 500, "an empty outbox")
        worker = stack.worker()
        wait_workers(stack, 1, procs=[worker])
        box, cpu = BoxCpu.now(), worker.cpu_seconds()
        wait_until(lambda: db.finished(conn) >= created, 60 + created / 20,
                   f"{created} tasks to finish", every=0.2)
        box, cpu = BoxCpu.now() - box, worker.cpu_seconds() - cpu
        span = db.span_seconds(conn, "started_at", "finished_at")
        stack.close()
        bare = asyncio.run(consume_and_ack(stack.rabbitmq_url, min(created, 20_000),
                                           quorum=True))
    drained = created / span if span > 0 else 0.0
    return [
        Row("POST /tasks/batch", f"{batches} batches of {BATCH:,} tasks, one at a time, "
            "1 API process", f"{p50_p99(latencies)} per batch; "
            f"{rate(created, wall, ' tasks/s')} into the database"),
        Row("Drain a bulk backlog", f"1 worker, {created:,} tasks made by POST /tasks/batch, "
            "0 s work", f"{rate(created, span, ' finished/s')} (first claim to last finish), "
            f"worker CPU {1000 * cpu / created:.2f} ms/task, {box.per_task(created)}; "
            f"bare quorum consumer {bare:,.0f} msgs/s (drain / bare {drained / bare:.2f})"),
    ]
