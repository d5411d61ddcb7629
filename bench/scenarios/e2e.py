"""11. End to end against a naive pipeline: the same paced POSTs over HTTP, each task finished
by a worker with 0 s of work, against (a) the service (one API process, one worker) and (b) the
naive pipeline of bench/naive/pipeline.py, taking turns, each in a fresh database and vhost.

CPU is counted per part from the first request until the step's tasks have finished: the API's
and the worker's processes, the PostgreSQL backends of the step's database with the server's
shared processes, and the whole RabbitMQ broker (whose other vhosts, if anyone else uses it, are
in that figure too). The load generator and the benchmark's own polling are left out of the
parts; the whole box's figure is given beside them."""

from __future__ import annotations

import sys
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.baselines import naive_pipeline
from bench.context import Context, Row
from bench.infra import Proc, Stack, sandbox, wait_workers
from bench.pacer import Paced, PacerProcess
from bench.parts import BROKER_COMMANDS, Meter, Split, by_command, session
from bench.scenarios.drain import NO_WORK
from bench.stats import ms

Conn = psycopg.Connection[tuple[Any, ...]]
_PROGRESS = """
SELECT count(*), count(finished_at) FROM tasks WHERE title = %s
"""
_OUTCOME = """
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d), percentile_disc(0.99) WITHIN GROUP
       (ORDER BY d), extract(epoch FROM max(finished_at) - min(created_at)), count(finished_at)
FROM (SELECT created_at, finished_at, extract(epoch FROM finished_at - created_at) AS d
      FROM tasks WHERE title = %s) AS step
"""
SYSTEMS = ("service", "naive")


@dataclass
class Step:
    system: str
    rate: float
    paced: Paced
    p50: float  # created to finished, seconds
    p99: float
    span: float  # first created to last finished
    finished: int
    split: Split

    @property
    def parts_ms(self) -> float:
        return 1000 * sum(self.split.parts.values()) / max(self.finished, 1)

    @property
    def box_ms(self) -> float:
        return 1000 * self.split.box.busy / max(self.finished, 1)

    def describe(self) -> str:
        n = max(self.finished, 1)
        cells = ", ".join(f"{name} {1000 * cpu / n:.2f}" for name, cpu in self.split.parts.items())
        steal = 100 * self.split.box.steal / self.split.box.total if self.split.box.total else 0
        achieved = f"{self.finished / self.span:,.0f}" if self.span > 0 else "n/a"
        failed = f"; {self.paced.failed} POSTs failed" if self.paced.failed else ""
        late = f"; {self.paced.late} POSTs sent late" if self.paced.late else ""
        left = self.paced.created - self.finished
        unfinished = f"; {left} not finished" if left > 0 else ""
        return (
            f"{achieved} tasks/s in and finished; created to finished p50 {ms(self.p50)}, "
            f"p99 {ms(self.p99)}; CPU {self.parts_ms:.2f} ms/task ({cells}), whole box "
            f"{self.box_ms:.2f} ms/task (steal {steal:.0f}%){failed}{late}{unfinished}"
        )


def _pids(conn: Conn) -> list[int]:
    """The step database's backends but the benchmark's own, and the server's shared ones."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE (datname = current_database() "
        "AND pid <> pg_backend_pid()) OR backend_type <> 'client backend'"
    ).fetchall()
    return [int(r[0]) for r in rows]


def pace(conn: Conn, system: str, api: Proc, worker: Proc, base_url: str, rate: float,
         seconds: float) -> Step:
    title = f"e2e-{system}-{rate:g}-{time.monotonic_ns()}"
    port = urllib.parse.urlsplit(base_url).port
    assert port is not None
    pacer = PacerProcess(port, rate, seconds, title)
    meter = Meter({
        "API": lambda: session(api.pid),
        "worker": lambda: session(worker.pid),
        "PostgreSQL": lambda: _pids(conn),
        "RabbitMQ": lambda: by_command(*BROKER_COMMANDS),
    })
    pacer.go()
    while pacer.running():
        time.sleep(0.2)
    paced = pacer.result()
    deadline = time.monotonic() + 10 + 2 * seconds  # a backlog may drain after the last POST
    while time.monotonic() < deadline:
        row = conn.execute(_PROGRESS, [title]).fetchone()
        if row and row[1] >= row[0]:
            break
        time.sleep(0.1)
    split = meter.read()
    row = conn.execute(_OUTCOME, [title]).fetchone()
    assert row is not None
    p50, p99, span = (float(x) if x is not None else float("nan") for x in row[:3])
    return Step(system, rate, paced, p50, p99, span, int(row[3]), split)


def _run_one(ctx: Context, system: str, rate: float) -> Step:
    seconds, warmup = ctx.sizes.e2e_seconds, ctx.sizes.e2e_warmup_seconds
    with sandbox(ctx.admin, ctx.log_dir, **NO_WORK) as stack, stack.db() as conn:
        api, worker, base_url = _start(stack, system)
        if warmup:  # pools grown, queries planned, the queue's first messages through
            pace(conn, system, api, worker, base_url, rate, warmup)
        step = pace(conn, system, api, worker, base_url, rate, seconds)
    print(f"bench: e2e {system} {rate:g}/s: {step.describe()}", file=sys.stderr)
    return step


def _start(stack: Stack, system: str) -> tuple[Proc, Proc, str]:
    if system == "naive":
        return naive_pipeline(stack)
    worker = stack.worker()  # boots while the api does
    api = stack.api()
    wait_workers(stack, 1)
    return api, worker, stack.base_url


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def run(ctx: Context) -> list[Row]:
    seconds = ctx.sizes.e2e_seconds
    rows: list[Row] = []
    for i, rate in enumerate(ctx.sizes.e2e_rates):
        order = SYSTEMS if i % 2 == 0 else SYSTEMS[::-1]  # neither always goes first
        steps = {system: _run_one(ctx, system, rate) for system in order}
        setting = f"{rate:,.0f} POST/s for {seconds:g} s, 1 API process, 1 worker, 0 s work"
        service, naive = steps["service"], steps["naive"]
        rows += [
            Row("E2E: service", setting, service.describe()),
            Row("E2E: naive pipeline (INSERT + confirmed publish; 2 UPDATEs)", setting,
                naive.describe()),
            Row("E2E: service against the naive pipeline", setting,
                f"CPU per task {_ratio(service.parts_ms, naive.parts_ms)} (whole box "
                f"{_ratio(service.box_ms, naive.box_ms)}); created-to-finished p99 "
                f"{ms(service.p99)} against {ms(naive.p99)} "
                f"({_ratio(service.p99, naive.p99)})"),
        ]
    return rows
