"""8. Sustained: the highest rate one API and one worker both take in over HTTP and finish."""

from __future__ import annotations

import sys
import time
import urllib.parse
from dataclasses import dataclass

import psycopg

from bench.context import Context, Row
from bench.infra import Proc, Stack, sandbox, wait_until, wait_workers
from bench.pacer import Paced, PacerProcess
from bench.parts import BROKER_COMMANDS, Meter, Split, by_command, postgres_pids, session, wal_lsn
from bench.scenarios.drain import NO_WORK
from bench.stats import ms

P99_LIMIT = 0.25  # created to finished, seconds
INTAKE_SHARE = 0.95  # of the offered rate, first to last row, or the API fell behind
DRAIN_GRACE = 3.0  # seconds after the last answer for the step's tasks to finish

_LATENCY = """
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d), percentile_disc(0.99) WITHIN GROUP
       (ORDER BY d), extract(epoch FROM max(created_at) - min(created_at)), count(*)
FROM (SELECT created_at, extract(epoch FROM finished_at - created_at) AS d
      FROM tasks WHERE title = %(title)s) AS step
"""
_BACKLOG = (
    "SELECT coalesce(sum(n), 0) FROM task_counts WHERE name IN ('status:new', 'status:in_progress')"
)


@dataclass
class Step:
    rate: float
    paced: Paced
    p50: float
    p99: float
    intake: float  # tasks/s, first to last created_at
    max_backlog: int
    drained: bool
    split: Split
    wal_bytes: int

    @property
    def ok(self) -> bool:
        return (
            self.paced.failed == 0
            and self.drained
            and self.p99 <= P99_LIMIT
            and self.intake >= INTAKE_SHARE * self.rate
        )

    def verdict(self) -> str:
        if self.ok:
            return "held"
        why = [f"{self.paced.failed} POSTs failed"] if self.paced.failed else []
        why += [] if self.drained else ["backlog left"]
        why += [f"p99 > {ms(P99_LIMIT)}"] if self.p99 > P99_LIMIT else []
        why += [f"intake {self.intake:,.0f}/s"] if self.intake < INTAKE_SHARE * self.rate else []
        return "FAILED (" + ", ".join(why) + ")"

    def describe(self) -> str:
        n = self.paced.created
        return (
            f"{self.verdict()}: created-to-finished p50 {ms(self.p50)}, p99 {ms(self.p99)}; "
            f"POST p99 {ms(self.paced.p99)}; backlog max {self.max_backlog:,}; "
            f"{self.split.box.per_task(n)}, {self.split.stack_per_task(n)}; "
            f"WAL {self.wal_bytes / max(n, 1):,.0f} B/task"
        )


def pace(
    stack: Stack,
    conn: psycopg.Connection[tuple],
    api: Proc,
    worker: Proc,
    rate: float,
    seconds: float,
) -> Step:
    """One step: `rate` POSTs/s for `seconds` from a pacer process; the CPU of each part is
    counted from the first request until the step's tasks have finished (or the grace ran out),
    the pacer's as it reports it (it has exited by then)."""
    title = f"sustained-{rate:g}-{time.monotonic_ns()}"
    port = urllib.parse.urlsplit(stack.base_url).port
    assert port is not None
    pacer = PacerProcess(port, rate, seconds, title)
    meter = Meter(
        {
            "API": lambda: session(api.pid),
            "worker": lambda: session(worker.pid),
            "PostgreSQL": lambda: postgres_pids(conn),
            "RabbitMQ": lambda: by_command(*BROKER_COMMANDS),
        }
    )
    wal = wal_lsn(conn)
    pacer.go()
    backlog = 0
    while pacer.running():
        backlog = max(backlog, _scalar(conn, _BACKLOG))
        time.sleep(0.5)
    paced = pacer.result()
    deadline = time.monotonic() + DRAIN_GRACE
    while (left := _scalar(conn, _BACKLOG)) and time.monotonic() < deadline:
        time.sleep(0.05)
    split, wal_bytes = meter.read(load_generator=paced.cpu_seconds), wal_lsn(conn) - wal
    row = conn.execute(_LATENCY, {"title": title}).fetchone()
    assert row is not None
    p50, p99, span, created = (float(x) if x is not None else float("inf") for x in row)
    intake = created / span if span > 0 else 0.0
    return Step(rate, paced, p50, p99, intake, backlog, left == 0, split, wal_bytes)


def _scalar(conn: psycopg.Connection[tuple], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def run(ctx: Context) -> list[Row]:
    rates, seconds = ctx.sizes.sustained_rates, ctx.sizes.sustained_seconds
    steps: list[Step] = []
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack, stack.db() as conn:
        worker = stack.worker()  # boots while the api does
        api = stack.api()
        wait_workers(stack, 1)
        pace(stack, conn, api, worker, rates[0], 2.0)  # warm-up: pools, first imports
        for rate in rates:
            for _ in range(ctx.sizes.sustained_tries):
                steps.append(pace(stack, conn, api, worker, rate, seconds))
                print(
                    f"bench: sustained {rate:g}/s {steps[-1].verdict()}, CPU by part: "
                    f"{steps[-1].split.per_task(steps[-1].paced.created)}",
                    file=sys.stderr,
                )
                wait_until(lambda: _scalar(conn, _BACKLOG) == 0, 60, "the backlog to drain")
                if steps[-1].ok:
                    break
            if not steps[-1].ok:
                break
    setting = f"1 API process, 1 worker, 0 s work, {seconds:g} s per step"
    rows = [Row("Sustained step", f"{s.rate:,.0f} POST/s offered", s.describe()) for s in steps]
    held = [s for s in steps if s.ok]
    if not held:
        last = steps[-1]
        return [
            *rows,
            Row("Sustained rate", setting, "none held"),
            Row(
                "Sustained CPU by part",
                f"at {last.rate:,.0f}/s (failed)",
                last.split.per_task(last.paced.created),
            ),
        ]
    best = held[-1]
    n = best.paced.created
    return [
        *rows,
        Row(
            "Sustained rate",
            setting,
            f"{best.intake:,.0f} tasks/s in and finished (p99 {ms(best.p99)}), "
            f"{best.split.box.per_task(n)}"
            + ("" if len(held) < len(steps) else "; every step held: raise the top rate"),
        ),
        Row("Sustained CPU by part", f"at {best.rate:,.0f}/s", best.split.per_task(n)),
    ]
