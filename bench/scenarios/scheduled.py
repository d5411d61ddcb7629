"""12. Scheduled tasks while they wait: the CPU the API, the worker and PostgreSQL spend over
the same quiet window with none scheduled, then with `scheduled_tasks` scheduled an hour
ahead (made by POST /tasks/batch); the relay's look for due dispatches (EXPLAIN ANALYZE);
and how many messages sit in the dispatch queue for them (none: a scheduled task's dispatch
waits in the outbox)."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import httpx
import psycopg

from adapters.queues import DISPATCH
from bench.context import Context, Row
from bench.infra import Stack, sandbox, wait_workers
from bench.parts import cpu_of, postgres_pids, session
from bench.scenarios.bulk import BATCH

#: the relay's lookup (sql/queries.sql, outbox_take) without its UPDATE
DUE = ("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM dispatch_outbox "
       "WHERE held_until < now() ORDER BY held_until, id LIMIT 100 FOR UPDATE SKIP LOCKED")


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
        with httpx.Client(base_url=stack.base_url, timeout=60) as http:
            for b in range(max(1, count // BATCH)):
                body = {"tasks": [{"title": f"later-{b}-{i}", "delay_seconds": 3600}
                                  for i in range(min(BATCH, count))]}
                answer = http.post("/tasks/batch", json=body)
                if answer.status_code != 201:
                    raise RuntimeError(f"batch {b}: {answer.status_code} {answer.text[:200]}")
        conn.execute("ANALYZE dispatch_outbox")
        waiting = int(conn.execute("SELECT count(*) FROM dispatch_outbox").fetchone()[0])
        time.sleep(5)  # the batches' own work (autovacuum, the relay's first looks) settles
        some = _quiet_cpu(stack, conn, quiet)
        [plan] = conn.execute(DUE).fetchone()
        top = plan[0]
        pages = top["Plan"].get("Shared Hit Blocks", 0) + top["Plan"].get("Shared Read Blocks", 0)
        queued = _ready(stack.rabbitmq_url)
    return [
        Row("Scheduled: quiet window", f"0 tasks scheduled, {quiet:g} s, 1 API, 1 worker", none),
        Row("Scheduled: quiet window", f"{waiting:,} tasks scheduled 1 h ahead, {quiet:g} s",
            some),
        Row("Scheduled: the relay's look for due ones", f"{waiting:,} waiting in the outbox",
            f"{top['Execution Time']:.3f} ms, {pages} pages read (EXPLAIN ANALYZE); "
            f"{queued} messages in the dispatch queue"),
    ]


def _ready(url: str) -> int:
    """Messages ready in the dispatch queue."""

    async def count() -> int:
        connection = await aio_pika.connect(url, timeout=10)
        try:
            declared = await (await connection.channel()).declare_queue(DISPATCH, passive=True)
            return int(declared.declaration_result.message_count or 0)
        finally:
            await connection.close()

    return asyncio.run(count())
