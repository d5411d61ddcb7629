"""Promise 7: a process cut off PostgreSQL or RabbitMQ by a silent network loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import psycopg
import pytest

from tests.e2e.test_service import finished_counts
from tests.support.partitions import (
    Linked,
    Proxies,
    Timeline,
    db_now,
    finished_by,
    held_by,
    proxies,
    recovered_from,
    turns,
    undispatched,
)
from tests.support.processes import Stack, eventually
from tests.support.proxy import Proxy
from tests.support.sse import open_stream

pytestmark = pytest.mark.partition

SETTINGS = {
    "TASKS_LEASE_SECONDS": "5",
    "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5",
    "TASKS_PROCESSING_MIN_SECONDS": "1",
    "TASKS_PROCESSING_MAX_SECONDS": "2",
    "TASKS_FAILURE_RATE": "0.2",
    "TASKS_WORKER_HTTP_PORT": "0",
}
#: DESIGN, promise 7: readiness turns 503 within 30 s of a service going silent
READY_TURNS = 30.0


@pytest.fixture
def cut(database_url: str, rabbitmq_url: str) -> Iterator[Proxies]:
    with proxies() as made:
        yield made


@pytest.fixture
def stack(database_url: str, rabbitmq_url: str, cut: Proxies,
          stacks: Callable[..., Stack]) -> Stack:
    """Stopped before the proxies, so that no process outlives its network."""
    return stacks(database_url, rabbitmq_url, **SETTINGS)


async def create(http: httpx.AsyncClient, n: int, prefix: str) -> list[str]:
    answers = await asyncio.gather(*(http.post("/tasks", json={"title": f"{prefix}{i}"})
                                     for i in range(n)))
    assert [a.status_code for a in answers] == [201] * n, answers[0].text
    return [a.json()["id"] for a in answers]


async def all_final(db: psycopg.Connection, total: int, timeout: float = 60) -> dict[str, int]:
    def check() -> dict[str, int] | None:
        counts = finished_counts(db)
        done = counts.get("completed", 0) + counts.get("error", 0)
        return counts if done == total and counts.get("new", 0) == 0 else None

    return await eventually(check, timeout, f"all {total} tasks to end")  # type: ignore[return-value]


def assert_nothing_lost_or_twice(db: psycopg.Connection, ids: list[str],
                                 counts: dict[str, int]) -> None:
    stored = {str(r[0]) for r in db.execute("SELECT id FROM tasks").fetchall()}
    assert stored == set(ids), "a task was lost, or one nobody created appeared"
    assert counts["finished_twice"] == 0
    assert counts.get("in_progress", 0) == counts.get("new", 0) == 0
    assert undispatched(db) == 0


def assert_carried_on(*linked: Linked) -> None:
    for one in linked:
        assert one.proc.alive() and one.proc.pid == one.pid, f"{one.proc.name} was restarted"


async def ready_cut_worker(stack: Stack, cut: Proxies) -> Linked:
    """The API, a worker behind proxies and a plain one, started at once and ready (the
    workers share what is created next, or the cut one takes it all if it consumes first)."""
    api = stack.api(wait_ready=False)
    worker = cut.worker(stack)
    stack.worker()
    stack.wait_http(api, "/health/ready", timeout=60)
    await turns(worker.ready, 200, 60, "the worker's readiness")
    return worker


async def heal_and_finish_more(link: Proxy, worker: Linked, http: httpx.AsyncClient,
                               db: psycopg.Connection, ids: list[str], at: Timeline) -> datetime:
    """Heal the cut, wait for the worker's readiness, create more tasks (added to `ids`) and
    wait until every task is final; the database's time of healing."""
    link.heal()
    at.mark("healed")
    healed_at = db_now(db)
    await turns(worker.ready, 200, 30, "the healed worker's readiness")
    at.mark("ready again")
    ids += await create(http, 30, "after")
    await all_final(db, len(ids))
    at.mark("all tasks final")
    return healed_at


async def assert_worker_carried_on(db: psycopg.Connection, worker: Linked, ids: list[str],
                                   healed_at: datetime) -> None:
    assert_nothing_lost_or_twice(db, ids, await all_final(db, len(ids)))
    await eventually(lambda: finished_by(db, worker, healed_at) > 0, 10,
                     "the healed worker to finish tasks again")
    assert_carried_on(worker)


async def test_a_worker_cut_from_postgres_longer_than_its_lease_finishes_nothing_twice(
    stack: Stack, cut: Proxies, db: psycopg.Connection
) -> None:
    at = Timeline()
    worker = await ready_cut_worker(stack, cut)  # and another, which takes back what it held
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=15) as http:
        ids = await create(http, 30, "before")
        await eventually(lambda: held_by(db, worker) >= 2, 30, "the worker to hold tasks")
        worker.pg.blackhole()
        at.mark("worker cut from PostgreSQL")
        cut_at = time.monotonic()
        took = await turns(worker.ready, 503, READY_TURNS, "the cut worker's readiness")
        at.mark("readiness 503")
        await eventually(lambda: recovered_from(db, worker) > 0, 30,
                         "its claims to expire and be taken back")
        await asyncio.sleep(max(0.0, 6 - (time.monotonic() - cut_at)))  # past its lease
        at.mark("its claims taken back")
        healed_at = await heal_and_finish_more(worker.pg, worker, http, db, ids, at)
    assert took < READY_TURNS
    await assert_worker_carried_on(db, worker, ids, healed_at)


async def test_a_worker_cut_from_rabbitmq_finishes_nothing_twice(
    stack: Stack, cut: Proxies, db: psycopg.Connection
) -> None:
    at = Timeline()
    worker = await ready_cut_worker(stack, cut)  # and another, RabbitMQ's second choice
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=15) as http:
        ids = await create(http, 30, "before")
        await eventually(lambda: held_by(db, worker) >= 2, 30, "the worker to hold tasks")
        worker.mq.blackhole()
        at.mark("worker cut from RabbitMQ")
        took = await turns(worker.ready, 503, READY_TURNS, "the cut worker's readiness")
        at.mark("readiness 503")
        healed_at = await heal_and_finish_more(worker.mq, worker, http, db, ids, at)
    assert took < READY_TURNS
    await assert_worker_carried_on(db, worker, ids, healed_at)


async def test_the_api_cut_from_rabbitmq_still_creates_and_dispatches_after_healing(
    stack: Stack, cut: Proxies, db: psycopg.Connection
) -> None:
    at = Timeline()
    api = cut.api(stack)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=15) as http:
        ids = await create(http, 5, "before")
        await eventually(lambda: undispatched(db) == 0, 15, "the first dispatches")
        api.mq.blackhole()
        at.mark("API cut from RabbitMQ")
        began = time.monotonic()
        ids += await create(http, 20, "cut")  # the outbox keeps them
        await asyncio.sleep(2)  # the relay now waits for confirms that will not come
        ids += await create(http, 20, "meanwhile")
        assert time.monotonic() - began < 12, "creates waited on the broker"
        took = await turns(api.ready, 503, READY_TURNS, "the API's readiness")
        assert undispatched(db) == 40, "dispatched through a silent connection?"
        at.mark("readiness 503")
        api.mq.heal()
        at.mark("healed")
        await turns(api.ready, 200, 30, "the healed API's readiness")
        at.mark("ready again")
        # no worker yet: only the API's own relay can empty its outbox
        await eventually(lambda: undispatched(db) == 0, 30, "the outbox to be relayed")
        at.mark("outbox relayed")
        stack.worker()
        ids += await create(http, 5, "after")
        counts = await all_final(db, len(ids))
        at.mark("all tasks final")
    assert took < READY_TURNS
    assert_nothing_lost_or_twice(db, ids, counts)
    assert_carried_on(api)


async def test_the_api_cut_from_postgres_answers_503_in_bounded_time_and_recovers(
    stack: Stack, cut: Proxies, db: psycopg.Connection
) -> None:
    at = Timeline()
    stack.worker()  # starts while the API does
    api = cut.api(stack)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http, \
            open_stream(stack.base_url, "/events") as feed:
        ids = await create(http, 5, "before")
        await all_final(db, 5)
        api.pg.blackhole()
        at.mark("API cut from PostgreSQL")

        async def timed(method: str, path: str, **kw: object) -> tuple[int, str, float]:
            began = time.monotonic()
            answer = await http.request(method, path, **kw)  # type: ignore[arg-type]
            return (answer.status_code, answer.headers.get("content-type", ""),
                    time.monotonic() - began)

        answers = await asyncio.gather(
            *(timed("POST", "/tasks", json={"title": f"cut{i}"}) for i in range(8)),
            *(timed("GET", f"/tasks/{task_id}") for task_id in ids),
            timed("GET", "/tasks"), timed("GET", f"/tasks/{ids[0]}/history"))
        assert {(status, kind) for status, kind, _ in answers} == {
            (503, "application/problem+json")}, answers
        slowest = max(seconds for _, _, seconds in answers)
        at.mark(f"{len(answers)} requests answered 503, the slowest in {slowest:.1f}s")
        assert slowest < 10, answers
        live = await http.get("/health/live")
        assert live.status_code == 200
        took = await turns(api.ready, 503, READY_TURNS, "the API's readiness")
        at.mark("readiness 503")
        api.pg.heal()
        at.mark("healed")
        await turns(api.ready, 200, 30, "the healed API's readiness")
        at.mark("ready again")
        after = await create(http, 10, "after")
        ids += after
        counts = await all_final(db, len(ids))
        at.mark("all tasks final")

        def streamed() -> bool:  # the stream opened before the cut carries on after it
            final = {e.data["task_id"] for e in feed.events
                     if e.data["to_status"] in ("completed", "error")}
            return final >= set(after)

        await eventually(streamed, 30, "the open event stream to tell the new tasks' ends")
        assert not feed.ended.is_set()
        at.mark("the open stream told them")
    assert took < READY_TURNS
    assert_nothing_lost_or_twice(db, ids, counts)
    assert_carried_on(api)
