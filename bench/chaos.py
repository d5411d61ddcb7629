"""Chaos benchmark: `python -m bench.chaos [--tasks N] [--smoke]`. Prints, never asserts.

Tasks are created through the api while one of three workers is SIGKILLed every few seconds
(and replaced) and RabbitMQ is stopped once (`rabbitmqctl stop_app` ... `start_app`). Then
everything is given time to end, and the database tells what happened to each task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bench import db
from bench.chaos_report import Kill, analyse, rows
from bench.context import Row
from bench.infra import (
    ADMIN_DATABASE_URL,
    ADMIN_RABBITMQ_URL,
    Admin,
    BenchError,
    Proc,
    Stack,
    finish_log_dir,
    new_log_dir,
    sandbox,
    wait_until,
    wait_workers,
)
from bench.load import paced_posts
from bench.report import machine, table

SETTINGS = {
    "TASKS_PROCESSING_MIN_SECONDS": "0",
    "TASKS_PROCESSING_MAX_SECONDS": "0.05",
    "TASKS_FAILURE_RATE": "0.2",
    "TASKS_LEASE_SECONDS": "3",
    "TASKS_LEASE_RENEW_SECONDS": "1",
    "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5",
}
# Workers log at INFO: their `worker_started` line is the only place that names the worker
# id which task_history records (the service has no setting for it).
WORKER_LOGS = {"TASKS_LOG_LEVEL": "INFO"}


@dataclass(frozen=True)
class Plan:
    tasks: int
    create_seconds: float  # tasks are created at an even pace over this time
    kill_every: float  # seconds between kills (jittered +-30%)
    broker_down: float  # seconds between stop_app and start_app
    final_timeout: float  # how long to wait for everything to be final afterwards


def worker_id(proc: Proc) -> str | None:
    """The id the worker logged on start (None until it has)."""
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if '"worker_started"' in line:
            return str(json.loads(line)["worker"])
    return None


class Killer(threading.Thread):
    """Every few seconds: SIGKILL one live worker whose id is known, start a fresh one."""

    def __init__(
        self, stack: Stack, workers: list[Proc], every: float, stop: threading.Event
    ) -> None:
        super().__init__(name="killer")
        self.stack, self.workers, self.every, self.stop = stack, workers, every, stop
        self.kills: list[Kill] = []
        self.rng = random.Random(7)

    def run(self) -> None:
        ids: dict[int, str | None] = {}
        while not self.stop.wait(self.every * self.rng.uniform(0.7, 1.3)):
            for w in self.workers:
                ids[w.pid] = ids.get(w.pid) or worker_id(w)
            known = [(w, i) for w in self.workers if w.alive() and (i := ids[w.pid])]
            if not known:
                continue
            victim, victim_id = self.rng.choice(known)
            at = datetime.now(UTC)
            victim.kill()
            self.kills.append(Kill(at, victim_id, victim.pid))
            self.workers.remove(victim)
            self.workers.append(self.stack.worker(**WORKER_LOGS))


class BrokerRestart(threading.Thread):
    """`rabbitmqctl stop_app`, then `start_app` after `down` seconds, whatever happens."""

    def __init__(self, admin: Admin, after: float, down: float, stop: threading.Event) -> None:
        super().__init__(name="broker-restart")
        self.admin, self.after, self.down, self.stop = admin, after, down, stop
        self.stopped_at: float | None = None
        self.started_at: float | None = None

    def run(self) -> None:
        if self.stop.wait(self.after):
            return
        self.stopped_at = time.monotonic()
        try:
            self.admin.rabbitmqctl("stop_app")
            time.sleep(self.down)
        finally:
            self.ensure_started()

    def ensure_started(self) -> None:
        if self.stopped_at is not None and self.started_at is None:
            self.admin.rabbitmqctl("start_app")
            self.started_at = time.monotonic()


def chaos(admin: Admin, plan: Plan, stack: Stack) -> tuple[list[Row], str]:
    stack.api()
    workers = [stack.worker(**WORKER_LOGS) for _ in range(3)]
    wait_workers(stack, 3)
    stop = threading.Event()
    killer = Killer(stack, workers, plan.kill_every, stop)
    broker = BrokerRestart(admin, plan.create_seconds * 0.4, plan.broker_down, stop)
    began = time.monotonic()
    killer.start()
    broker.start()
    try:
        posted = asyncio.run(
            paced_posts(stack.base_url, plan.tasks / plan.create_seconds, plan.create_seconds)
        )
    finally:
        stop.set()
        killer.join()
        broker.join()
        broker.ensure_started()
    created_for = time.monotonic() - began
    with stack.db() as conn:
        try:
            wait_until(
                lambda: db.tasks(conn, f"NOT {db.FINAL}") == 0,
                plan.final_timeout,
                "every task to be final",
                every=0.5,
            )
        except BenchError as exc:
            print(f"bench.chaos: {exc}", file=sys.stderr)
        settled = time.monotonic() - began
        outcome = analyse(conn, posted.ids, killer.kills)
    outcome.failed_posts = posted.failed
    down = (broker.started_at or 0) - (broker.stopped_at or 0)
    summary = (
        f"{len(killer.kills)} workers SIGKILLed (every ~{plan.kill_every:g} s), "
        f"broker down {down:.1f} s (stop_app issued to start_app done); "
        f"tasks created over {created_for:.1f} s, "
        f"all final after {settled:.1f} s"
    )
    return rows(outcome), summary


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--tasks", type=int, help="how many tasks (default 10000; smoke 200)")
    parser.add_argument("--smoke", action="store_true", help="tiny and short")
    parser.add_argument("--database-url", default=ADMIN_DATABASE_URL)
    parser.add_argument("--rabbitmq-url", default=ADMIN_RABBITMQ_URL)
    args = parser.parse_args(argv)
    tasks = args.tasks or (200 if args.smoke else 10_000)
    if args.smoke:
        plan = Plan(tasks, create_seconds=12, kill_every=2.5, broker_down=3, final_timeout=60)
    else:
        plan = Plan(
            tasks,
            create_seconds=max(20.0, tasks / 250),
            kill_every=4,
            broker_down=5,
            final_timeout=180,
        )
    return args, plan


def main(argv: list[str] | None = None) -> int:
    args, plan = parse(argv)
    admin = Admin(args.database_url, args.rabbitmq_url)
    log_dir = new_log_dir()
    failed = True
    try:
        with sandbox(admin, log_dir, **SETTINGS) as stack:
            results, summary = chaos(admin, plan, stack)
        failed = False
    finally:
        finish_log_dir(log_dir, keep=failed)
    title = "\n".join(
        [
            f"tasks chaos benchmark: {plan.tasks:,} tasks, 3 workers, "
            "0-0.05 s work, 20% failures, lease 3 s (renew 1 s, sweep 0.5 s)",
            summary,
            *machine(args.database_url),
        ]
    )
    print(table(title, ("measure", "value", "detail"), results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
