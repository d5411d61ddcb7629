"""7. GET /metrics over many stored tasks (one API process, and two summing their files), and
the counters of a run checked against the database."""

from __future__ import annotations

import time

import httpx

from bench import db, tally
from bench.context import Context, Row
from bench.infra import sandbox
from bench.load import sequential_gets
from bench.stats import p50_p99


def run(ctx: Context) -> list[Row]:
    count, requests = ctx.sizes.stored_tasks, ctx.sizes.list_requests
    with sandbox(ctx.admin, ctx.log_dir) as stack:
        tallied = tally.run(stack, ctx.load_tool, ctx.sizes.http_seconds, ctx.sizes.connections)
    with sandbox(ctx.admin, ctx.log_dir) as stack:
        with stack.db() as conn:
            started = time.monotonic()
            db.bulk_load(conn, count)
            loaded = time.monotonic() - started
        rows = [tallied, Row("GET /metrics: bulk load",
                             f"{count:,} rows, INSERT ... SELECT + ANALYZE", f"{loaded:.1f} s")]
        for processes in (1, 2):
            stack.api(TASKS_HTTP_WORKERS=str(processes))
            with httpx.Client(base_url=stack.base_url, timeout=30) as client:
                sequential_gets(client, "/health/live", {}, 5)  # warm-up
                noop = sequential_gets(client, "/health/live", {}, requests)
                sequential_gets(client, "/metrics", {}, 5)
                scrapes = sequential_gets(client, "/metrics", {}, requests)
                size = len(client.get("/metrics").content)
            setting = f"{count:,} tasks, {processes} API process(es), {requests} sequential"
            rows += [
                Row("GET /health/live (no-op)", setting, p50_p99(noop)),
                Row("GET /metrics", f"{setting}, {size:,} bytes", p50_p99(scrapes)),
            ]
    return rows
