"""4. Capacity of one worker at the default 5-10 s of emulated work."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from bench import db
from bench.context import Context, Row
from bench.infra import BenchError, Proc, Stack, sandbox, wait_workers
from bench.stats import mib, rate


@dataclass
class Samples:
    """(seconds since start, in progress, finished, worker RSS KiB) every `every` seconds."""

    points: list[tuple[float, int, int, int]] = field(default_factory=list)

    def max_in_progress(self) -> int:
        return max((p[1] for p in self.points), default=0)

    def peak_rss(self) -> int:
        return max((p[3] for p in self.points), default=0)

    def peak_rate(self, window: float = 2.0) -> float:
        """Most tasks finished in any `window` seconds, per second."""
        best = 0.0
        for i, (t0, _, done0, _) in enumerate(self.points):
            for t1, _, done1, _ in self.points[i + 1 :]:
                if t1 - t0 >= window:
                    best = max(best, (done1 - done0) / (t1 - t0))
                    break
        return best


def sample(stack: Stack, worker: Proc, total: int, timeout: float, every: float = 0.25) -> Samples:
    samples = Samples()
    started = time.monotonic()
    with stack.db() as conn:
        while time.monotonic() - started < timeout:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'in_progress'), "
                f"count(*) FILTER (WHERE {db.FINAL}) FROM tasks"
            ).fetchone()
            assert row is not None
            samples.points.append((time.monotonic() - started, row[0], row[1], worker.rss_kib()))
            if row[1] >= total or not worker.alive():
                return samples
            time.sleep(every)
    return samples


def run(ctx: Context) -> list[Row]:
    count, concurrency = ctx.sizes.capacity_tasks, ctx.sizes.capacity_concurrency
    timeout = 60 + 15 * -(-count // concurrency) + count / 100
    with sandbox(ctx.admin, ctx.log_dir, TASKS_WORKER_CONCURRENCY=str(concurrency)) as stack:
        worker = stack.worker()  # boots while the api does
        stack.api()
        wait_workers(stack, 1)
        idle_rss = worker.rss_kib()
        result: list[Samples] = []
        sampler = threading.Thread(
            target=lambda: result.append(sample(stack, worker, count, timeout)), daemon=True
        )
        sampler.start()
        created = time.monotonic()
        asyncio.run(db.preload(stack.database_url, count))
        create_seconds = time.monotonic() - created
        sampler.join(timeout + 10)
        with stack.db() as conn:
            done = db.finished(conn)
            span = db.span_seconds(conn, "created_at", "finished_at")
        if not result or done < count:
            raise BenchError(f"only {done} of {count} tasks finished within {timeout:.0f} s")
    samples = result[0]
    setting = f"1 worker, CONCURRENCY={concurrency}, {count:,} tasks, 5-10 s work"
    ideal = min(count, concurrency) / 7.5
    return [
        Row(
            "Capacity: in progress at once",
            setting,
            f"max {samples.max_in_progress():,} (created in {create_seconds:.1f} s)",
        ),
        Row(
            "Capacity: finished/s",
            setting,
            f"{rate(count, span)} overall, peak {samples.peak_rate():,.0f}/s over 2 s "
            f"(ideal ~{ideal:,.0f}/s)",
        ),
        Row(
            "Capacity: worker RSS", setting, f"idle {mib(idle_rss)}, peak {mib(samples.peak_rss())}"
        ),
    ]
