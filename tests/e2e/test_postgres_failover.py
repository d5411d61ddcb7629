"""Promise 8, PostgreSQL half: the primary lost to its synchronous standby, under load, on real
`tasks` processes given both hosts. Nothing accepted is lost or finished twice, no request
hangs, work goes on within 30 s, no process restarts, and event streams carry on without a gap.

Each scenario prints what it measured: seconds until creates and finishes went on, how many
requests got a 503, how long readiness took, how many times the event stream reconnected.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.pgcluster import Node, PgCluster
from tests.support.processes import Proc, Stack, eventually, free_port
from tests.support.sse import open_stream

pytestmark = pytest.mark.failover

SETTINGS = {
    "TASKS_LEASE_SECONDS": "5",
    "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5",
    "TASKS_FAILURE_RATE": "0.2",
}
#: DESIGN, promise 7: a request that needs PostgreSQL gets its answer (a 503 at worst) within
#: 10 s. The clients wait that long and no longer: a request without an answer by then hung.
CLIENT_TIMEOUT = 10.0
#: DESIGN, promise 8: work goes on, and readiness is back, within 30 s
GOES_ON = 30.0
CLIENTS = 6
BEFORE, AFTER = 2.0, 6.0  # seconds of load before the change and after it began


@dataclass
class Load:
    """Every POST /tasks of the clients: what each got, and when (monotonic seconds)."""

    accepted: list[tuple[str, float, float]] = field(default_factory=list)  # id, sent, answered
    refused: list[float] = field(default_factory=list)  # 503 problems, when answered
    hung: list[float] = field(default_factory=list)  # no answer within CLIENT_TIMEOUT
    other: list[str] = field(default_factory=list)  # anything else (must stay empty)
    slowest: float = 0.0  # the longest any answer took

    async def run(self, base_url: str, stop: asyncio.Event, client: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT) as http:
            i = 0
            while not stop.is_set():
                i += 1
                sent = time.monotonic()
                try:
                    answer = await http.post("/tasks", json={"title": f"c{client}-{i}"})
                except httpx.TimeoutException:
                    self.hung.append(sent)
                    continue
                except httpx.HTTPError as exc:
                    self.other.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.slowest = max(self.slowest, time.monotonic() - sent)
                if answer.status_code == 201:
                    self.accepted.append((answer.json()["id"], sent, time.monotonic()))
                elif (answer.status_code == 503
                      and answer.headers["content-type"] == "application/problem+json"):
                    self.refused.append(time.monotonic())
                    await asyncio.sleep(0.05)
                else:
                    self.other.append(f"{answer.status_code} {answer.text[:200]}")
                await asyncio.sleep(0.01)


@dataclass
class Followed:
    """GET /events read as a browser's EventSource does: reconnecting with Last-Event-ID."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    reconnects: int = 0

    async def run(self, base_url: str, stop: asyncio.Event, opened: asyncio.Event) -> None:
        while not stop.is_set():
            headers = {"Last-Event-ID": self.ids[-1]} if self.ids else None
            with contextlib.suppress(httpx.HTTPError):
                async with open_stream(base_url, "/events", headers=headers) as stream:
                    if stream.status == 200:
                        opened.set()
                        taken = 0
                        while not (stream.ended.is_set() or stop.is_set()):
                            await asyncio.sleep(0.05)
                            taken = self._take(stream.events, taken)
                        self._take(stream.events, taken)
            if not stop.is_set():
                self.reconnects += 1
                await asyncio.sleep(0.5)

    def _take(self, received: list[Any], taken: int) -> int:
        for event in received[taken:]:
            self.ids.append(event.id)
            self.events.append(event.data)
        return len(received)


def history(db: psycopg.Connection) -> collections.Counter[tuple[str, ...]]:
    rows = db.execute("SELECT task_id::text, coalesce(from_status, ''), to_status, attempt::text "
                      "FROM task_history").fetchall()
    return collections.Counter(tuple(r) for r in rows)


def streamed(followed: Followed) -> collections.Counter[tuple[str, ...]]:
    return collections.Counter((e["task_id"], e["from_status"] or "", e["to_status"],
                                str(e["attempt"])) for e in followed.events)


def finals(db: psycopg.Connection) -> dict[str, int]:
    """Per task, how many final transitions its history has."""
    return dict(db.execute(
        "SELECT t.id::text, count(h.*) FILTER (WHERE h.to_status IN ('completed', 'error')) "
        "FROM tasks t LEFT JOIN task_history h ON h.task_id = t.id GROUP BY t.id").fetchall())


def finished_at(db: psycopg.Connection) -> list[float]:
    """When each task ended (the database's clock, which is this machine's)."""
    return [float(r[0]) for r in db.execute(
        "SELECT extract(epoch FROM at) FROM task_history "
        "WHERE to_status IN ('completed', 'error') ORDER BY at").fetchall()]


def pause(times: list[float], since: float, until: float) -> float:
    """The longest wait between two successes in [since, until]: how long the work stood
    still around the change."""
    edges = [since, *sorted(t for t in times if since <= t <= until), until]
    return max(b - a for a, b in itertools.pairwise(edges))


def connected_to(proc: Proc, node: Node) -> bool:
    """The process's LISTEN connection came back on `node` (its log says so)."""
    for line in proc.log().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "listener_connected" and entry.get("server") == node.address:
                return True
    return False


async def ready_again(url: str, since: float) -> tuple[float, dict[str, Any]]:
    """Seconds from `since` until `url` answers 200, and its body."""
    async with httpx.AsyncClient(timeout=2) as http:
        async def ok() -> dict[str, Any] | None:
            with contextlib.suppress(httpx.HTTPError):
                answer = await http.get(url)
                if answer.status_code == 200:
                    return answer.json()  # type: ignore[no-any-return]
            return None

        body = await eventually(ok, GOES_ON, f"{url} to answer 200", every=0.2)
    return time.monotonic() - since, body  # type: ignore[return-value]


@pytest.fixture
def cluster(pg_cluster: PgCluster) -> PgCluster:
    pg_cluster.heal()  # a synchronous standby again after the last scenario
    return pg_cluster


@pytest.mark.parametrize("change", ["failover", "switchover"])
async def test_losing_the_primary_under_load_loses_nothing_and_work_goes_on(
    cluster: PgCluster, rabbitmq_url: str, stacks: Callable[..., Stack], change: str,
) -> None:
    began_test = time.monotonic()
    name = f"tasks_test_{change}_{int(time.time() * 1000) % 10**9}"
    stack = stacks(cluster.url(name), rabbitmq_url, **SETTINGS)
    stack.migrate()  # creates the database on the primary, through both hosts
    worker_port = free_port()
    api = stack.api()
    worker = stack.worker(TASKS_WORKER_HTTP_PORT=str(worker_port))
    pids = {api.pid, worker.pid}
    worker_ready = f"http://127.0.0.1:{worker_port}/health/ready"
    await ready_again(worker_ready, time.monotonic())
    old = cluster.primary
    await eventually(lambda: connected_to(worker, old), 15, "the worker's LISTEN connection")

    load, followed, stop, opened = Load(), Followed(), asyncio.Event(), asyncio.Event()
    stream = asyncio.create_task(followed.run(stack.base_url, asyncio.Event(), opened))
    await asyncio.wait_for(opened.wait(), 10)
    clients = [asyncio.create_task(load.run(stack.base_url, stop, i)) for i in range(CLIENTS)]
    await asyncio.sleep(BEFORE)

    changed_at, changed_wall = time.monotonic(), time.time()
    new = await asyncio.to_thread(getattr(cluster, change))
    writable_after = time.monotonic() - changed_at
    (api_ready, body), (worker_ready_after, _) = await asyncio.gather(
        ready_again(f"{stack.base_url}/health/ready", changed_at),
        ready_again(worker_ready, changed_at))
    writable_at = changed_at + writable_after

    def created_again() -> bool:
        return any(sent >= writable_at for _, sent, _ in load.accepted)

    with contextlib.suppress(AssertionError):  # judged below, by how long creates stood still
        await eventually(created_again, GOES_ON, "a create after the change")
    await asyncio.sleep(max(1.0, AFTER - (time.monotonic() - changed_at)))
    stop.set()
    await asyncio.gather(*clients)
    stopped_at, stopped_wall = time.monotonic(), time.time()

    with psycopg.connect(new.url(name), autocommit=True) as db:
        accepted = {task_id for task_id, _, _ in load.accepted}

        def all_final() -> dict[str, int] | None:
            counts = finals(db)
            return counts if counts and all(n > 0 for n in counts.values()) else None

        counts = await eventually(all_final, 60, "every task to end")
        try:
            await eventually(lambda: streamed(followed) == history(db), 20,
                             "the event stream to carry every change")
        except AssertionError:
            got, want = streamed(followed), history(db)
            missing, extra = want - got, got - want
            raise AssertionError(
                f"the event stream missed {sum(missing.values())} changes "
                f"({list(missing)[:5]}) and has {sum(extra.values())} it should not "
                f"({list(extra)[:5]}); reconnected {followed.reconnects} times") from None
        stream.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stream
        finishes = finished_at(db)
        stuck = db.execute("SELECT count(*) FROM tasks WHERE status IN ('new', 'in_progress')"
                           ).fetchone()[0]

    # how long creates (answered 201) and finishes (in the history) stood still: the longest
    # gap between two of them from the change on while the load ran, against the longest
    # one before it
    creates_paused = pause([answered for *_, answered in load.accepted], changed_at,
                           stopped_at)
    finishes_paused = pause(finishes, changed_wall, stopped_wall)
    usual = pause([answered for *_, answered in load.accepted], changed_at - BEFORE + 0.5,
                  changed_at)
    print(f"\n{change}: cluster writable again after {writable_after:.2f}s "
          f"({cluster.timings.get(change, 0):.2f}s in all); creates stood still "
          f"{creates_paused:.2f}s (at most {usual:.2f}s before), finishes "
          f"{finishes_paused:.2f}s; {len(load.accepted)} created, "
          f"{len(load.refused)} answered 503 ({len(counts) - len(accepted)} of them stored "
          f"all the same: the answer to their commit was lost), "
          f"{len(load.hung)} hung, {len(load.other)} other, slowest answer "
          f"{load.slowest:.2f}s; readiness 200 again after "
          f"{api_ready:.2f}s (API) and {worker_ready_after:.2f}s (worker); event stream "
          f"reconnected {followed.reconnects} times, {len(followed.events)} events; "
          f"{len(counts)} tasks; scenario {time.monotonic() - began_test:.1f}s")

    assert load.hung == [], f"{len(load.hung)} requests got no answer in {CLIENT_TIMEOUT}s"
    assert load.other == [], load.other[:5]
    assert len(accepted) == len(load.accepted) > 50
    assert accepted <= set(counts), "a task answered 201 is missing"
    assert all(counts[task_id] == 1 for task_id in counts), "a task ended twice"
    assert stuck == 0
    assert creates_paused < GOES_ON
    assert finishes_paused < GOES_ON
    assert api_ready < GOES_ON and worker_ready_after < GOES_ON
    assert body["servers"]["database"] == new.address
    assert {p.pid for p in (api, worker) if p.alive()} == pids, "a process was restarted"
    assert connected_to(worker, new), "the worker's LISTEN connection is not on the new primary"
    if change == "switchover":  # the old primary is up, a standby: nothing of ours stays on it
        assert old.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                       name) == [(0,)]

