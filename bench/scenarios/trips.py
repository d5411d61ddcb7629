"""9. Round trips per task at a paced rate: statements and transactions that PostgreSQL sees.

On a PostgreSQL cluster of its own (pg_stat_statements needs a preloaded library), one API
process and one worker, 0 s of work. The service connects as a role of its own, so that
pg_stat_statements is read for that role and database only (the benchmark's own queries run as
the superuser). Transactions come from pg_stat_database, which a backend updates at most once a
second and, once idle, ten seconds later, but at once when it exits: so the count starts after a
quiet spell and ends when the service's processes have exited; the benchmark's own polls on that
database are counted and taken off."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import db
from bench.context import Context, Row
from bench.infra import Admin, Stack, wait_until, wait_workers
from bench.load import Paced, paced_posts
from bench.pgcluster import Cluster, Unavailable, private_cluster
from bench.scenarios.drain import NO_WORK
from bench.stats import ms, percentile

Conn = psycopg.Connection[tuple[Any, ...]]
ROLE = "tasks_service"
DATABASE = "tasks"
_STATEMENTS = """
SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0),
       coalesce(sum(calls) FILTER (WHERE query ~* '^\\s*(BEGIN|COMMIT|ROLLBACK|START|END)\\M'), 0)
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %(db)s)
  AND userid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
"""
_TOP = """
SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %(db)s)
  AND userid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
ORDER BY calls DESC LIMIT 12
"""
_XACTS = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s"


@dataclass
class Counts:
    tasks: int
    statements: int
    transaction_control: int  # BEGIN / COMMIT / ROLLBACK among the statements
    transactions: int
    exec_ms: float

    def describe(self) -> str:
        n = max(self.tasks, 1)
        return (
            f"{self.statements / n:.2f} statements/task (BEGIN/COMMIT included: "
            f"{self.transaction_control / n:.2f} of them), {self.transactions / n:.2f} "
            f"transactions/task (until the processes exited), PostgreSQL execution "
            f"{self.exec_ms / n:.2f} ms/task; "
            f"{self.tasks:,} tasks"
        )


class Polls:
    """The benchmark's own queries on the service's database, each one transaction, counted so
    that pg_stat_database's figure can be taken down by them."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.count = 0

    def finished(self) -> int:
        self.count += 1
        return db.finished(self.conn)


@contextlib.contextmanager
def _vhost(admin: Admin) -> Iterator[str]:
    url = admin.new_vhost()
    try:
        yield url
    finally:
        admin.drop_vhost(url)


def _prepare(cluster: Cluster) -> None:
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER")
        conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")


def _xacts(admin: Conn) -> int:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    return db.scalar(admin, _XACTS, [DATABASE])


def _until_exited(admin: Conn) -> int:
    """Transactions counted once the service's backends are gone and the count holds still (a
    backend leaves pg_stat_activity a moment before its last counts are in)."""
    wait_until(
        lambda: db.scalar(admin, "SELECT count(*) FROM pg_stat_activity "
                          "WHERE datname = %s AND usename = %s", [DATABASE, ROLE]) == 0,
        30, "the service's backends to exit",
    )
    last = -1
    while (now := _xacts(admin)) != last:
        last = now
        time.sleep(0.3)
    return now


def measure(
    ctx: Context, cluster: Cluster, amqp_url: str
) -> tuple[Counts, Paced, list[tuple[float | None, float | None]]]:
    """The counts over the paced load, the load's outcome, and each of its tasks' pickup and
    created-to-finished seconds."""
    sizes = ctx.sizes
    rate, seconds, warmup = sizes.trips_rate, sizes.trips_seconds, sizes.trips_warmup_seconds
    _prepare(cluster)
    stack = Stack(cluster.url(DATABASE, user=ROLE), amqp_url, ctx.log_dir, **NO_WORK)
    try:
        stack.migrate()
        stack.worker()  # boots while the api does
        stack.api()
        wait_workers(stack, 1)
        with psycopg.connect(cluster.url(DATABASE), autocommit=True) as conn:
            polls, warmed = Polls(conn), 0
            if warmup:  # pools grown, first queries planned
                warm = asyncio.run(paced_posts(stack.base_url, rate, warmup))
                warmed = len(warm.ids)
                wait_until(lambda: polls.finished() >= warmed, 60, "the warm-up to finish")
            time.sleep(ctx.sizes.trips_settle_seconds)  # idle backends' counts come in 10 s late
            with psycopg.connect(cluster.admin_url, autocommit=True) as admin:
                conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's own, now
                time.sleep(0.1)
                polls.count = 0
                before = _xacts(admin)
                admin.execute("SELECT pg_stat_statements_reset()")
                paced = asyncio.run(paced_posts(stack.base_url, rate, seconds))
                wait_until(lambda: polls.finished() >= warmed + len(paced.ids),
                           60 + len(paced.ids) / 20, "the paced tasks to finish", every=0.2)
                statements, exec_ms, control = admin.execute(
                    _STATEMENTS, {"db": DATABASE, "role": ROLE}).fetchone() or (0, 0.0, 0)
                top = admin.execute(_TOP, {"db": DATABASE, "role": ROLE}).fetchall()
        stack.close()  # the service's backends exit: their last counts reach pg_stat_database
        with psycopg.connect(cluster.admin_url, autocommit=True) as admin:
            transactions = _until_exited(admin) - before - polls.count
        with psycopg.connect(cluster.url(DATABASE), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT extract(epoch FROM started_at - created_at), "
                "extract(epoch FROM finished_at - created_at) FROM tasks WHERE id = ANY(%s)",
                [paced.ids],
            ).fetchall()
    finally:
        stack.close()
    tasks = len(paced.ids)
    for calls, query in top:
        print(f"bench: trips {calls / max(tasks, 1):5.2f}/task  {query[:110]}", file=sys.stderr)
    counts = Counts(tasks, int(statements), int(control), transactions, float(exec_ms))
    return counts, paced, [(_float(a), _float(b)) for a, b in rows]


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def run(ctx: Context) -> list[Row]:
    rate, seconds = ctx.sizes.trips_rate, ctx.sizes.trips_seconds
    setting = f"{rate:g} tasks/s for {seconds:g} s, 1 API process, 1 worker, 0 s work"
    try:
        with private_cluster(ctx.admin.database_url, ctx.log_dir) as cluster, \
                _vhost(ctx.admin) as amqp_url:
            counts, paced, rows = measure(ctx, cluster, amqp_url)
    except Unavailable as why:
        return [Row("Round trips per task", setting, f"n/a ({why})")]
    pickup = [a for a, _ in rows if a is not None]
    done = [b for _, b in rows if b is not None]
    causes = ", ".join(f"{n} {cause}" for cause, n in paced.failures.most_common())
    failed = f"; {paced.failed} POSTs failed ({causes})" if paced.failed else ""
    unfinished = len(rows) - len(done)
    left = f"; {unfinished} not finished" if unfinished else ""
    return [
        Row(
            "Round trips per task",
            f"{setting}; own PostgreSQL with pg_stat_statements, service's role and database",
            counts.describe() + failed,
        ),
        Row(
            "Pickup, created to finished",
            setting + " (the same tasks)",
            f"pickup (started - created) p50 {ms(percentile(pickup, 50))}, p99 "
            f"{ms(percentile(pickup, 99))}; created to finished p50 {ms(percentile(done, 50))}, "
            f"p99 {ms(percentile(done, 99))}{left}",
        ),
    ]
