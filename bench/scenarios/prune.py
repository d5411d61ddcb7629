"""8. Retention: `tasks prune` over many old finished tasks while POST /tasks flows."""

from __future__ import annotations

import asyncio
import inspect
import time

from application.retention import PruneTasks
from bench import db
from bench.context import Context, Row
from bench.infra import TASKS, BenchError, Stack, sandbox, wait_workers
from bench.rawhttp import Paced, paced_posts
from bench.scenarios.drain import NO_WORK
from bench.scenarios.http_post import BODY
from bench.stats import ms, p50_p99, percentile

RETENTION_DAYS = 30
BATCH = inspect.signature(PruneTasks).parameters["batch"].default


async def prune_under_load(stack: Stack, per_second: float) -> tuple[Paced, float]:
    """`tasks prune` (the operator's command, against the api) while POSTs flow at
    `per_second` until it exits; the POSTs' figures and its wall time."""
    stop = asyncio.Event()
    posting = asyncio.ensure_future(
        paced_posts(stack.base_url, "/tasks", BODY, per_second, 3600, stop=stop))
    await asyncio.sleep(0.5)  # the POSTs are flowing when the prune starts
    started = time.monotonic()
    pruner = await asyncio.create_subprocess_exec(
        TASKS, "prune", "--older-than", str(RETENTION_DAYS), "--url", stack.base_url,
        env=stack.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await pruner.communicate()
    took = time.monotonic() - started
    await asyncio.sleep(0.5)
    stop.set()
    paced = await posting
    if pruner.returncode != 0:
        raise BenchError(f"tasks prune exited {pruner.returncode}: {err.decode()[-500:]}")
    return paced, took


def run(ctx: Context) -> list[Row]:
    count, per_second = ctx.sizes.prune_tasks, ctx.sizes.prune_rate
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack, stack.db() as conn:
        started = time.monotonic()
        db.bulk_load(conn, count, days=30, statuses=("completed", "error"),
                     age=2 * RETENTION_DAYS, history=True)
        loaded = time.monotonic() - started
        history = db.scalar(conn, "SELECT count(*) FROM task_history")
        stack.worker()
        stack.api()
        wait_workers(stack, 1)
        quiet = asyncio.run(paced_posts(stack.base_url, "/tasks", BODY, per_second,
                                        ctx.sizes.prune_baseline_seconds))
        during, took = asyncio.run(prune_under_load(stack, per_second))
        left = db.tasks(conn, "title LIKE 'bulk-%'")
    if left:
        raise BenchError(f"{left:,} old tasks were left after tasks prune")
    setting = f"{count:,} old finished tasks, batch {BATCH:,}, {per_second:g} POST/s"
    ratio = percentile(during.latencies, 99) / percentile(quiet.latencies, 99)
    return [
        Row("Prune: bulk load", f"{count:,} tasks + {history:,} history rows",
            f"{loaded:.1f} s"),
        Row("Prune: rows deleted", setting,
            f"{count / took:,.0f} tasks/s + {history / took:,.0f} history rows/s "
            f"({took:.1f} s, `tasks prune`)"),
        Row("POST /tasks without prune", setting, _posts(quiet)),
        Row("POST /tasks during prune", setting,
            f"{_posts(during)}; p99 {ratio:.2f}x without"),
    ]


def _posts(paced: Paced) -> str:
    failed = f", {paced.failed} failed" if paced.failed else ""
    return (f"{p50_p99(paced.latencies)}, max {ms(max(paced.latencies, default=float('nan')))}"
            f"; {paced.sent_rate:,.0f}/s sent for {paced.seconds:.0f} s{failed}")
