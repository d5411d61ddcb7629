"""Chaos benchmark: `python -m bench.chaos [--tasks N] [--smoke] [--no-broker-stop]`.

Prints, never asserts. Tasks are created through the api while one of three workers is
SIGKILLed every few seconds (and replaced), RabbitMQ is stopped once (`rabbitmqctl stop_app`
... `start_app`; `--no-broker-stop` leaves it running, for shared services), and, in turns, a
fourth worker is blackholed from PostgreSQL and the api from RabbitMQ through proxies of the
benchmark's own (bench/partitions.py). Then everything is given time to end, and the
database tells what happened to each task.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from bench.partitions import Links, Partitioner, find_progress, first_dispatch, first_worker_step
from bench.partitions import rows as partition_rows
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
    broker_down: float  # seconds between stop_app and start_app (0: RabbitMQ is not stopped)
    cut_for: float  # seconds each partition lasts
    cut_pause: float  # seconds between two partitions
    final_timeout: float  # how long to wait for everything to be final afterwards


def worker_id(proc: Proc) -> str | None:
    """The id the worker logged on start (None until it has)."""
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if '"process_started"' in line and (worker := json.loads(line).get("worker")):
            return str(worker)
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


def chaos(admin: Admin, plan: Plan, stack: Stack, links: tuple[Links, Links]
          ) -> tuple[list[Row], str]:
    to_api, to_worker = links
    api = stack.api(**to_api.env(stack.database_url, stack.rabbitmq_url))
    cut = stack.worker(**WORKER_LOGS, **to_worker.env(stack.database_url, stack.rabbitmq_url))
    workers = [stack.worker(**WORKER_LOGS) for _ in range(3)]
    wait_workers(stack, 4)
    stop = threading.Event()
    killer = Killer(stack, workers, plan.kill_every, stop)
    broker = BrokerRestart(admin, plan.create_seconds * 0.4, plan.broker_down, stop)
    partitioner = Partitioner(to_worker, to_api, plan.cut_for, plan.cut_pause, stop)
    began = time.monotonic()
    killer.start()
    if plan.broker_down:
        broker.start()
    partitioner.start()
    try:
        posted = asyncio.run(
            paced_posts(stack.base_url, plan.tasks / plan.create_seconds, plan.create_seconds)
        )
    finally:
        stop.set()
        killer.join()
        if plan.broker_down:
            broker.join()
            broker.ensure_started()
        partitioner.join()
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
        cut_id = worker_id(cut) or "?"
        find_progress(partitioner.cuts, lambda after: first_worker_step(conn, cut_id, after),
                      lambda after: first_dispatch(api.log_path, after))
    outcome.failed_posts = posted.failed
    down = (broker.started_at or 0) - (broker.stopped_at or 0)
    summary = (
        f"{len(killer.kills)} workers SIGKILLed (every ~{plan.kill_every:g} s), "
        + (f"broker down {down:.1f} s (stop_app issued to start_app done); "
           if plan.broker_down else "broker left running; ")
        + f"{len(partitioner.cuts)} partitions of {plan.cut_for:g} s; "
        f"tasks created over {created_for:.1f} s"
        + (f" (failed POSTs: {dict(posted.failures)}), " if posted.failed else ", ")
        + f"all final after {settled:.1f} s"
    )
    return rows(outcome) + partition_rows(partitioner.cuts, plan.cut_for), summary


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--tasks", type=int, help="how many tasks (default 10000; smoke 200)")
    parser.add_argument("--smoke", action="store_true", help="tiny and short")
    parser.add_argument("--no-broker-stop", action="store_true",
                        help="never stop RabbitMQ (kills and partitions only: safe on shared "
                        "services)")
    parser.add_argument("--cluster", action="store_true",
                        help="on a three-node RabbitMQ cluster and a PostgreSQL primary with a "
                        "standby of the benchmark's own: a node killed, the primary failed over "
                        "(bench/chaos_cluster.py)")
    parser.add_argument("--database-url", default=ADMIN_DATABASE_URL)
    parser.add_argument("--rabbitmq-url", default=ADMIN_RABBITMQ_URL)
    args = parser.parse_args(argv)
    tasks = args.tasks or (200 if args.smoke else 10_000)
    if args.smoke:
        plan = Plan(tasks, create_seconds=20, kill_every=2.5, broker_down=3, cut_for=5,
                    cut_pause=2, final_timeout=90)
    else:
        plan = Plan(
            tasks,
            create_seconds=max(30.0, tasks / 250),
            kill_every=4,
            broker_down=5,
            cut_for=8,
            cut_pause=4,
            final_timeout=180,
        )
    if args.no_broker_stop:
        plan = dataclasses.replace(plan, broker_down=0)
    return args, plan


def main(argv: list[str] | None = None) -> int:
    args, plan = parse(argv)
    if args.cluster:
        return main_cluster(args, plan)
    admin = Admin(args.database_url, args.rabbitmq_url)
    log_dir = new_log_dir()
    failed = True
    links = (Links.start(args.database_url, args.rabbitmq_url),
             Links.start(args.database_url, args.rabbitmq_url))
    try:
        with sandbox(admin, log_dir, **SETTINGS) as stack:
            results, summary = chaos(admin, plan, stack, links)
        failed = False
    finally:
        for link in links:
            link.stop()
        finish_log_dir(log_dir, keep=failed)
    title = "\n".join(
        [
            f"tasks chaos benchmark: {plan.tasks:,} tasks, 3 workers (+1 partitioned), "
            "0-0.05 s work, 20% failures, lease 3 s (renew 1 s, sweep 0.5 s)",
            summary,
            *machine(args.database_url),
        ]
    )
    print(table(title, ("measure", "value", "detail"), results))
    return 0


def main_cluster(args: argparse.Namespace, plan: Plan) -> int:
    from bench import chaos_cluster

    log_dir = new_log_dir()
    failed = True
    try:
        results, summary = chaos_cluster.run(plan.tasks, plan.create_seconds,
                                             plan.final_timeout, args.database_url, log_dir,
                                             SETTINGS, plan.kill_every)
        failed = False
    finally:
        finish_log_dir(log_dir, keep=failed)
    title = "\n".join([f"tasks chaos benchmark on clusters: {plan.tasks:,} tasks, 3 workers, "
                       "0-0.05 s work, 20% failures, lease 3 s (renew 1 s, sweep 0.5 s)",
                       summary, *machine(args.database_url)])
    print(table(title, ("measure", "value", "detail"), results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
