"""8. Retention: `tasks prune` over many old finished tasks while POST /tasks flows."""

from __future__ import annotations

import asyncio
import inspect
import time

import psycopg

from application.retention import PruneTasks
from bench import db
from bench.context import Context, Row
from bench.infra import TASKS, BenchError, Stack, sandbox, wait_workers
from bench.rawhttp import Paced, paced_posts
from bench.scenarios.drain import NO_WORK
from bench.scenarios.http_post import BODY
from bench.stats import ms, p50_p99, percentile

RETENTION_DAYS = 30
FINISHED = ("SELECT sum(n) FROM task_counts "
            "WHERE name IN ('status:completed', 'status:error')")
BATCH = inspect.signature(PruneTasks).parameters["batch"].default


async def prune_under_load(stack: Stack, per_second: float) -> tuple[Paced, float, float]:
    """`tasks prune` (the operator's command, against the api) while POSTs flow at
    `per_second`; the POSTs, and when it deleted (perf_counter, first delete to exit)."""
    stop = asyncio.Event()
    posting = asyncio.ensure_future(
        paced_posts(stack.base_url, "/tasks", BODY, per_second, 3600, stop=stop))
    await asyncio.sleep(0.5)  # the POSTs are flowing when the prune starts
    pruner = await asyncio.create_subprocess_exec(
        TASKS, "prune", "--older-than", str(RETENTION_DAYS), "--url", stack.base_url,
        env=stack.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    first = asyncio.ensure_future(first_delete(stack.database_url))
    _, err = await pruner.communicate()
    ended = time.perf_counter()
    began = first.result() if first.done() else ended
    first.cancel()
    stop.set()
    paced = await posting
    if pruner.returncode != 0:
        raise BenchError(f"tasks prune exited {pruner.returncode}: {err.decode()[-500:]}")
    return paced, began, ended


async def first_delete(database_url: str) -> float:
    """When the finished-task count (the service's own counters: cheap to read) first
    drops: the command's start-up and its first count are not deleting."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        highest = None
        while True:
            row = await (await conn.execute(FINISHED)).fetchone()
            now = int(row[0]) if row and row[0] is not None else 0
            if highest is not None and now < highest:
                return time.perf_counter()
            highest = max(now, highest or 0)
            await asyncio.sleep(0.05)


def run(ctx: Context) -> list[Row]:
    count, per_second = ctx.sizes.prune_tasks, ctx.sizes.prune_rate
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack, stack.db() as conn:
        started = time.perf_counter()
        db.bulk_load(conn, count, days=30, statuses=("completed", "error"),
                     age=2 * RETENTION_DAYS, history=True)
        loaded = time.perf_counter() - started
        history = db.scalar(conn, "SELECT count(*) FROM task_history")
        stack.worker()
        stack.api()
        wait_workers(stack, 1)
        baseline = ctx.sizes.prune_baseline_seconds
        warm_up = paced_posts(stack.base_url, "/tasks", BODY, per_second, baseline / 2)
        asyncio.run(warm_up)  # not counted: the first requests of a fresh api are slower
        before = asyncio.run(paced_posts(stack.base_url, "/tasks", BODY, per_second, baseline))
        paced, began, ended = asyncio.run(prune_under_load(stack, per_second))
        after = asyncio.run(paced_posts(stack.base_url, "/tasks", BODY, per_second, baseline))
        left = db.tasks(conn, "title LIKE 'bulk-%'")
    if left:
        raise BenchError(f"{left:,} old tasks were left after tasks prune")
    took, during = ended - began, paced.between(began, ended)
    quiet = before.latencies + after.latencies
    setting = f"{count:,} old finished tasks, batch {BATCH:,}, {per_second:g} POST/s"
    ratio = percentile(during, 99) / percentile(quiet, 99)
    return [
        Row("Prune: bulk load", f"{count:,} tasks + {history:,} history rows",
            f"{loaded:.1f} s"),
        Row("Prune: rows deleted", setting,
            f"{count / took:,.0f} tasks/s + {history / took:,.0f} history rows/s "
            f"({took:.1f} s from the first delete to the end of `tasks prune`)"),
        Row("POST /tasks without prune", f"{setting}, before + after",
            _posts(quiet, before.seconds + after.seconds, before.failed + after.failed)),
        Row("POST /tasks during prune", setting,
            f"{_posts(during, took, paced.failed)}; p99 {ratio:.2f}x without"),
    ]


def _posts(latencies: list[float], seconds: float, failed: int) -> str:
    failures = f", {failed} failed" if failed else ""
    return (f"{p50_p99(latencies)}, max {ms(max(latencies, default=float('nan')))}"
            f"; {len(latencies) / seconds:,.0f}/s answered over {seconds:.0f} s{failures}")
