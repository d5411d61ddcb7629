"""The chaos benchmark on clusters: `python -m bench.chaos --cluster`.

A three-node RabbitMQ cluster and a PostgreSQL primary with a synchronous standby, both of the
benchmark's own (the tests' harnesses: own names, ports and directories), the service on all
of them with three dispatch queues. Tasks are created at an even pace while one of three
workers is SIGKILLed every few seconds (and replaced); a third of the way in, the RabbitMQ node
leading the most dispatch queues is killed (`kill -9`); two thirds of the way in, the primary
stops at once (`pg_ctl stop -m immediate`) and the standby is promoted. Afterwards the database
tells what happened to each task, and each loss gets its row: how long until the API was ready
again, until a task was finished again, and how many requests failed meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import db
from bench.chaos_report import analyse, rows
from bench.context import Row
from bench.infra import BenchError, Stack, wait_until, wait_workers
from bench.load import paced_posts
from tests.support.pgcluster import PgCluster, start_cluster
from tests.support.rabbitcluster import RabbitCluster

#: after a loss, requests that fail within this many seconds (and before the next loss) are
#: counted against it
WINDOW_SECONDS = 30.0


@dataclass
class Loss:
    what: str
    at: float  # time.monotonic()
    at_utc: datetime
    ready_after: float | None = None  # seconds until the API's /health/ready answered 200
    finished_after: float | None = None  # seconds until a task was finished again
    failed: Counter[str] | None = None


class Losses(threading.Thread):
    """The two losses, each at its time, then readiness watched until it is back."""

    def __init__(self, rabbit: RabbitCluster, vhost: str, pg: PgCluster, base_url: str,
                 times: tuple[float, float], stop: threading.Event) -> None:
        super().__init__(name="losses")
        self.rabbit, self.vhost, self.pg, self.base_url = rabbit, vhost, pg, base_url
        self.times, self.stop = times, stop
        self.losses: list[Loss] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        began = time.monotonic()
        try:
            for when, lose in zip(self.times, (self._rabbit_node, self._primary), strict=True):
                if self.stop.wait(max(0.0, began + when - time.monotonic())):
                    return
                loss = Loss(lose(), time.monotonic(), datetime.now(UTC))
                self.losses.append(loss)
                loss.ready_after = self._ready_again(loss.at)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.failure = exc

    def _rabbit_node(self) -> str:
        leaders = Counter(node for queue, node in self.rabbit.leaders(self.vhost).items()
                          if queue.startswith("tasks.dispatch") and not queue.endswith(".dlq"))
        name, led = leaders.most_common(1)[0]
        self.rabbit.kill(self.rabbit.node(name))
        return f"RabbitMQ node kill -9 (it led {led} of 3 dispatch queues)"

    def _primary(self) -> str:
        self.pg.failover()
        return f"PostgreSQL failover ({self.pg.timings['failover']:.1f} s to promote)"

    def _ready_again(self, since: float) -> float | None:
        deadline = since + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - since
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return None


def run(tasks: int, create_seconds: float, final_timeout: float, machine_database: str,
        log_dir: Path, settings: dict[str, str], kill_every: float) -> tuple[list[Row], str]:
    from bench.chaos import WORKER_LOGS, Killer  # the one worker killer of both modes

    rabbit = RabbitCluster(3).start()
    pg = start_cluster(machine_database)
    try:
        vhost = rabbit.new_vhost()
        stack = Stack(pg.new_database(), ",".join(rabbit.urls(vhost)), log_dir, **settings,
                      TASKS_DISPATCH_QUEUES="3")
        stack.migrate()
        try:
            return _chaos(stack, rabbit, vhost, pg, tasks, create_seconds, final_timeout,
                          kill_every, Killer, WORKER_LOGS)
        finally:
            stack.close()
    finally:
        pg.close()
        rabbit.close()


def _chaos(stack: Stack, rabbit: RabbitCluster, vhost: str, pg: PgCluster, tasks: int,
           create_seconds: float, final_timeout: float, kill_every: float,
           killer_class: type, worker_logs: dict[str, str]) -> tuple[list[Row], str]:
    api = stack.api()
    workers = [stack.worker(**worker_logs) for _ in range(3)]
    wait_workers(stack, 3)
    stop = threading.Event()
    killer = killer_class(stack, workers, kill_every, stop)
    losses = Losses(rabbit, vhost, pg, stack.base_url,
                    (create_seconds / 3, 2 * create_seconds / 3), stop)
    began = time.monotonic()
    killer.start()
    losses.start()
    try:
        posted = asyncio.run(paced_posts(stack.base_url, tasks / create_seconds, create_seconds))
    finally:
        stop.set()
        killer.join()
        losses.join()
    if losses.failure is not None:
        raise BenchError(f"a loss could not be made: {losses.failure}")
    with stack.db() as conn:
        try:
            wait_until(lambda: db.tasks(conn, f"NOT {db.FINAL}") == 0, final_timeout,
                       "every task to be final", every=0.5)
        except BenchError as exc:
            print(f"bench.chaos: {exc}")
        settled = time.monotonic() - began
        outcome = analyse(conn, posted.ids, killer.kills)
        ends = [loss.at for loss in losses.losses[1:]] + [float("inf")]
        for loss, next_loss in zip(losses.losses, ends, strict=True):
            until = min(loss.at + WINDOW_SECONDS, next_loss)
            first = conn.execute(
                "SELECT min(at) FROM task_history WHERE to_status IN ('completed', 'error') "
                "AND at > %s", [loss.at_utc]).fetchone()
            if first and first[0] is not None:
                loss.finished_after = (first[0] - loss.at_utc).total_seconds()
            loss.failed = Counter(cause for at, cause in posted.failed_at
                                  if loss.at <= at < until)
    outcome.failed_posts = posted.failed
    table = rows(outcome) + [
        Row(loss.what, f"ready {_secs(loss.ready_after)}",
            f"a task finished again {_secs(loss.finished_after)} after; "
            f"{_failed(loss.failed)} after it, before the next loss or {WINDOW_SECONDS:g} s")
        for loss in losses.losses]
    table.append(Row("restarts", "0" if api.alive() else "API DIED",
                     f"API pid {api.pid} {'alive' if api.alive() else 'gone'}; "
                     f"{sum(w.alive() for w in killer.workers)} of {len(killer.workers)} "
                     "workers alive (the killer's victims are replaced, not restarted)"))
    summary = (f"3 RabbitMQ nodes, 3 dispatch queues, PostgreSQL primary + synchronous standby; "
               f"{len(killer.kills)} workers SIGKILLed (every ~{kill_every:g} s); "
               f"tasks created over {create_seconds:g} s"
               + (f" (failed POSTs: {dict(posted.failures)}), " if posted.failed else ", ")
               + f"all final after {settled:.1f} s")
    return table, summary


def _failed(causes: Counter[str] | None) -> str:
    """'0 POSTs failed' or '2 POSTs failed (503: 2)'."""
    if not causes:
        return "0 POSTs failed"
    said = ", ".join(f"{cause}: {count}" for cause, count in causes.most_common())
    return f"{sum(causes.values())} POSTs failed ({said})"


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"
