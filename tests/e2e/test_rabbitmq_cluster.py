"""Promise 8 for RabbitMQ: losing a node of a three-node cluster while tasks flow loses no
accepted task, finishes none twice, and work goes on within 30 s with no process restarted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import httpx
import psycopg
import pytest

from tests.e2e.test_service import finished_counts
from tests.support.load import HttpLoad, IntakeLoad
from tests.support.processes import Proc, Stack, eventually, free_port
from tests.support.rabbitcluster import Node, RabbitCluster

pytestmark = pytest.mark.chaos

#: queue 0 keeps the name of the single dispatch queue; queue i > 0 is `tasks.dispatch.i`
DISPATCH_QUEUES = ("tasks.dispatch", "tasks.dispatch.1", "tasks.dispatch.2")
SETTINGS = {
    "TASKS_DISPATCH_QUEUES": str(len(DISPATCH_QUEUES)),
    "TASKS_PROCESSING_MIN_SECONDS": "0.05",
    "TASKS_PROCESSING_MAX_SECONDS": "0.3",
    "TASKS_FAILURE_RATE": "0.1",
    "TASKS_LEASE_SECONDS": "5",
    "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5",
}
#: tasks are created for LOAD_SECONDS; the node is killed KILL_AFTER seconds into it
LOAD_SECONDS, KILL_AFTER = 15.0, 3.0
#: DESIGN, promise 8: work goes on within 30 s of the loss, without a restart
GOES_ON_WITHIN = 30.0


@pytest.fixture
def vhost(cluster: RabbitCluster) -> str:
    return cluster.new_vhost()


@pytest.fixture
def stack(database_url: str, cluster: RabbitCluster, vhost: str,
          stacks: Callable[..., Stack]) -> Stack:
    """Processes that are given every node of the cluster, in one TASKS_RABBITMQ_URL."""
    return stacks(database_url, ",".join(cluster.urls(vhost)), **SETTINGS)


async def test_the_dispatch_queues_are_led_by_three_different_nodes(
    stack: Stack, cluster: RabbitCluster, vhost: str
) -> None:
    stack.api()
    stack.worker(TASKS_WORKER_HTTP_PORT="0")
    leaders = await dispatch_leaders(cluster, vhost)
    assert len(set(leaders.values())) == len(cluster.nodes), leaders


async def test_killing_the_busiest_node_loses_no_task_and_finishes_none_twice(
    stack: Stack, cluster: RabbitCluster, vhost: str, db: psycopg.Connection
) -> None:
    stack.migrate()
    api = stack.api()
    ready = {api: f"{stack.base_url}/health/ready"}
    for _ in range(2):
        port = free_port()
        ready[stack.worker(TASKS_WORKER_HTTP_PORT=str(port))] = (
            f"http://127.0.0.1:{port}/health/ready")
    for proc, url in ready.items():
        await eventually(lambda p=proc, u=url: answers_ready(p, u), 30, f"{proc.name} ready")
    pids = {proc: proc.pid for proc in ready}
    leaders = await dispatch_leaders(cluster, vhost)
    victim = cluster.node(Counter(leaders.values()).most_common(1)[0][0])
    survivor = next(node for node in cluster.nodes if node is not victim)

    http, intake = HttpLoad(stack.base_url), IntakeLoad(survivor.url(vhost))
    load = asyncio.gather(http.run(LOAD_SECONDS), intake.run(LOAD_SECONDS))
    await asyncio.sleep(KILL_AFTER)
    await asyncio.to_thread(cluster.kill, victim)
    killed, killed_at = time.monotonic(), db_now(db)
    back = await asyncio.gather(*(back_ready(proc, url, cluster, victim, killed)
                                  for proc, url in ready.items()))
    await load
    await eventually(lambda: all_in(db, http, intake), 60, "every accepted task to end")

    resumed, longest_stall = resumption(db, killed_at)
    print(f"\nkilled {victim.name}, leader of "
          f"{sorted(q for q, n in leaders.items() if n == victim.name)}; "
          f"HTTP: {len(http.accepted)} created, {http.refused} answered 503; "
          f"intake: {len(intake.accepted)} confirmed; ready again after "
          f"{', '.join(f'{p.name} {s:.1f}s' for p, s in back)}; tasks created after the "
          f"kill finished from {resumed:.1f}s on; longest pause in finishing {longest_stall:.1f}s")

    assert http.unanswered == http.wrong == [], (http.unanswered[:5], http.wrong[:5])
    assert intake.failed == [], intake.failed[:5]
    assert_each_accepted_task_ended_exactly_once(db, http, intake)
    assert {proc: proc.pid for proc in ready} == pids
    assert all(proc.alive() for proc in ready), "a process exited"
    assert finishers(db, killed_at) <= set(pids.values()), "work done by a process we never started"
    assert resumed < GOES_ON_WITHIN
    assert victim.name not in (await dispatch_leaders(cluster, vhost)).values()


# -- helpers ----------------------------------------------------------------------------------


async def dispatch_leaders(cluster: RabbitCluster, vhost: str) -> dict[str, str]:
    """{dispatch queue: node leading it}, once the processes declared all of them."""

    async def declared() -> dict[str, str] | None:
        leaders = await asyncio.to_thread(cluster.leaders, vhost)
        found = {q: leaders[q] for q in DISPATCH_QUEUES if leaders.get(q)}
        return found if len(found) == len(DISPATCH_QUEUES) else None

    return await eventually(declared, 30, f"the quorum queues {DISPATCH_QUEUES}")  # type: ignore[return-value]


def answers_ready(proc: Proc, url: str) -> bool:
    assert proc.alive(), f"{proc.name} exited:\n{proc.log()}"
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def back_ready(proc: Proc, url: str, cluster: RabbitCluster, victim: Node,
                     killed: float) -> tuple[Proc, float]:
    """Seconds from the kill until `proc` is ready on a node that lives, which its readiness
    body names (by the node's AMQP address or node name: the field's name is the app's)."""
    async with httpx.AsyncClient(timeout=5) as client:
        last = ""
        while time.monotonic() - killed < GOES_ON_WITHIN:
            try:
                answer = await client.get(url)
                last = f"{answer.status_code} {answer.text}"
                named = [n for n in cluster.nodes if named_in(answer.text, n)]
                if answer.status_code == 200 and len(named) == 1 and named[0] is not victim:
                    return proc, time.monotonic() - killed
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.25)
    raise AssertionError(f"{proc.name} not ready on a live node {GOES_ON_WITHIN}s after "
                         f"{victim.name} was killed; last answer: {last}")


def named_in(text: str, node: Node) -> bool:
    return any(mark in text for mark in (f"127.0.0.1:{node.amqp_port}",
                                         f"localhost:{node.amqp_port}", node.name))


def db_now(db: psycopg.Connection) -> datetime:
    return db.execute("SELECT clock_timestamp()").fetchone()[0]


def all_in(db: psycopg.Connection, http: HttpLoad, intake: IntakeLoad) -> bool:
    """Every accepted task is stored, and none is left `new` or `in_progress`."""
    waiting, from_intake = db.execute(
        "SELECT count(*) FILTER (WHERE status NOT IN ('completed', 'error')), "
        "count(*) FILTER (WHERE source = 'amqp') FROM tasks").fetchone()
    return waiting == 0 and from_intake >= len(intake.accepted)


def assert_each_accepted_task_ended_exactly_once(db: psycopg.Connection, http: HttpLoad,
                                                 intake: IntakeLoad) -> None:
    api_ids = {str(r[0]) for r in db.execute("SELECT id FROM tasks WHERE source = 'api'")}
    assert set(http.accepted) <= api_ids, "a task the API answered 201 for is missing"
    assert len(api_ids - set(http.accepted)) <= http.refused, "tasks nobody was told of"
    titles = Counter(r[0] for r in db.execute("SELECT title FROM tasks WHERE source = 'amqp'"))
    assert all(titles[t] == 1 for t in intake.accepted), "an intake message lost or made twice"
    counts = finished_counts(db)
    assert counts["finished_twice"] == 0
    assert counts.get("new", 0) == counts.get("in_progress", 0) == 0, counts
    not_once = db.execute(
        "SELECT count(*) FROM tasks t WHERE (SELECT count(*) FROM task_history h "
        "WHERE h.task_id = t.id AND h.to_status IN ('completed', 'error')) <> 1").fetchone()[0]
    assert not_once == 0, "a task without exactly one final transition in its history"


def finishers(db: psycopg.Connection, since: datetime) -> set[int]:
    """PIDs in the worker ids (host-pid-suffix) of the finals recorded after `since`."""
    rows = db.execute("SELECT DISTINCT worker FROM task_history WHERE at > %s "
                      "AND to_status IN ('completed', 'error')", (since,)).fetchall()
    return {int(r[0].rsplit("-", 2)[1]) for r in rows if r[0]}


def resumption(db: psycopg.Connection, killed_at: datetime) -> tuple[float, float]:
    """(seconds from the kill to the first finish of a task created after it, longest gap
    between two finishes from a second before the kill on)."""
    first = db.execute(
        "SELECT extract(epoch FROM min(h.at) - %(k)s) FROM task_history h JOIN tasks t "
        "ON t.id = h.task_id WHERE h.to_status IN ('completed', 'error') "
        "AND t.created_at > %(k)s",
        {"k": killed_at}).fetchone()[0]
    gap = db.execute(
        "SELECT extract(epoch FROM max(gap)) FROM (SELECT at - lag(at) OVER (ORDER BY at) "
        "AS gap FROM task_history WHERE to_status IN ('completed', 'error') "
        "AND at > %(k)s - interval '1 second') g", {"k": killed_at}).fetchone()[0]
    return float(first if first is not None else "inf"), float(gap or 0)
