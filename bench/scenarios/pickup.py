"""5. Pickup latency (started_at - created_at) at a steady rate, 2 workers, 0 s of work."""

from __future__ import annotations

import asyncio

from bench import db
from bench.context import Context, Row
from bench.infra import sandbox, wait_until, wait_workers
from bench.load import paced_posts
from bench.scenarios.drain import NO_WORK
from bench.stats import ms, percentile


def run(ctx: Context) -> list[Row]:
    per_second, seconds = ctx.sizes.pickup_rate, ctx.sizes.pickup_seconds
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack, stack.db() as conn:
        stack.worker()  # the workers boot while the api does
        stack.worker()
        stack.api()
        wait_workers(stack, 2)
        paced = asyncio.run(paced_posts(stack.base_url, per_second, seconds))
        wait_until(
            lambda: db.finished(conn) >= len(paced.ids),
            60 + len(paced.ids) / 20,
            "the paced tasks to finish",
            every=0.2,
        )
        waits = [
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM started_at - created_at) FROM tasks "
                "WHERE started_at IS NOT NULL"
            )
        ]
    causes = ", ".join(f"{count} {cause}" for cause, count in paced.failures.most_common())
    failed = f", {paced.failed} POSTs failed ({causes})" if paced.failed else ""
    setting = f"{per_second:g} tasks/s for {seconds:g} s, 2 workers, 0 s work"
    return [
        Row(
            "Pickup latency (started - created)",
            setting,
            f"p50 {ms(percentile(waits, 50))}, p99 {ms(percentile(waits, 99))}, "
            f"max {ms(max(waits, default=float('nan')))}; {len(paced.ids):,} tasks, "
            f"sent at {len(paced.ids) / paced.seconds:,.0f}/s{failed}",
        )
    ]
