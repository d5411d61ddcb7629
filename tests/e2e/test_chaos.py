"""The reliability promises, proven by killing, stopping and restarting real things."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import psycopg
import pytest

from tests.e2e.test_service import finished_counts
from tests.support.amqp import amqp_client
from tests.support.processes import Stack, eventually
from tests.support.services import Services

pytestmark = pytest.mark.chaos

FAST_RECOVERY = {
    "TASKS_LEASE_SECONDS": "3",
    "TASKS_LEASE_RENEW_SECONDS": "1",
    "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5",
    "TASKS_FAILURE_RATE": "0",
}


def stuck(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM tasks WHERE status NOT IN ('completed', 'error')"
                      ).fetchone()[0]


async def create(http: httpx.AsyncClient, n: int, prefix: str = "t") -> list[str]:
    answers = await asyncio.gather(*(http.post("/tasks", json={"title": f"{prefix}{i}"})
                                     for i in range(n)))
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers][:3]
    return [a.json()["id"] for a in answers]


async def all_finished(db: psycopg.Connection, total: int, timeout: float) -> dict[str, int]:
    def check() -> dict[str, int] | None:
        counts = finished_counts(db)
        return counts if counts.get("completed", 0) + counts.get("error", 0) == total else None

    return await eventually(check, timeout, f"all {total} tasks to finish")  # type: ignore[return-value]


def held_by_running_workers(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM tasks WHERE status = 'in_progress'").fetchone()[0]


async def test_a_worker_killed_mid_task_loses_nothing_and_finishes_nothing_twice(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.env.update(FAST_RECOVERY, TASKS_PROCESSING_MIN_SECONDS="1.5",
                     TASKS_PROCESSING_MAX_SECONDS="2.5")
    stack.migrate()
    stack.api()
    victim = stack.worker()
    async with stack_client(stack) as http:
        await create(http, 40)
    await eventually(lambda: held_by_running_workers(db) >= 10, 20, "tasks in progress")
    victim.kill()  # SIGKILL: no hand-back, no ack; only leases and recovery can save these
    orphaned = held_by_running_workers(db)
    killed_at = time.monotonic()
    stack.worker()
    counts = await all_finished(db, 40, 60)
    assert counts == {"completed": 40, "finished_twice": 0}
    recovered = db.execute(
        "SELECT count(*) FROM task_history WHERE from_status = 'in_progress' AND to_status = 'new'"
    ).fetchone()[0]
    assert recovered >= orphaned > 0
    # lease (3 s) + sweep (0.5 s) + one processing round (<= 2.5 s) + slack
    assert time.monotonic() - killed_at < 30


async def test_sigterm_hands_back_unfinished_tasks_and_none_stay_stuck(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.env.update(FAST_RECOVERY, TASKS_PROCESSING_MIN_SECONDS="4",
                     TASKS_PROCESSING_MAX_SECONDS="5", TASKS_SHUTDOWN_GRACE_SECONDS="0.5")
    stack.migrate()
    stack.api()
    first = stack.worker()
    async with stack_client(stack) as http:
        await create(http, 20)
    await eventually(lambda: held_by_running_workers(db) == 20, 20, "all tasks claimed")
    assert first.stop(timeout=20) == 0
    handed_back = db.execute(
        "SELECT count(*) FROM task_history WHERE reason = 'handed back on shutdown'"
    ).fetchone()[0]
    assert handed_back == 20
    assert held_by_running_workers(db) == 0
    assert db.execute("SELECT max(attempts) FROM tasks").fetchone()[0] == 0
    stack.worker()
    assert await all_finished(db, 20, 60) == {"completed": 20, "finished_twice": 0}


async def test_sigterm_lets_in_flight_tasks_finish_within_the_grace_period(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.env.update(FAST_RECOVERY, TASKS_PROCESSING_MIN_SECONDS="1",
                     TASKS_PROCESSING_MAX_SECONDS="1.5", TASKS_SHUTDOWN_GRACE_SECONDS="10")
    stack.migrate()
    stack.api()
    worker = stack.worker()
    async with stack_client(stack) as http:
        await create(http, 10)
    await eventually(lambda: held_by_running_workers(db) == 10, 20, "all tasks claimed")
    assert worker.stop(timeout=20) == 0
    assert finished_counts(db) == {"completed": 10, "finished_twice": 0}


async def test_tasks_accepted_while_rabbitmq_is_down_are_processed_after_it_returns(
    stack: Stack, db: psycopg.Connection, services: Services
) -> None:
    stack.env.update(FAST_RECOVERY)
    stack.migrate()
    stack.api()
    stack.worker()
    with broker_stopped(services):
        async with stack_client(stack) as http:
            ids = await create(http, 30, "while-down")
            ready = await http.get("/health/ready")
            assert ready.status_code == 503
            assert "broker" in ready.json()["detail"]
        assert db.execute("SELECT count(*) FROM dispatch_outbox").fetchone()[0] == 30
    counts = await all_finished(db, len(ids), 90)
    assert counts == {"completed": 30, "finished_twice": 0}
    assert db.execute("SELECT count(*) FROM dispatch_outbox").fetchone()[0] == 0


async def test_processes_started_before_rabbitmq_work_once_it_is_up(
    stack: Stack, db: psycopg.Connection, services: Services
) -> None:
    stack.env.update(FAST_RECOVERY)
    stack.migrate()
    with broker_stopped(services):
        api = stack.api(wait_ready=False)
        stack.worker()
        stack.wait_http(api, "/health/live")
        async with stack_client(stack) as http:
            assert (await http.get("/health/ready")).status_code == 503
            await create(http, 5)
        await asyncio.sleep(2)
        assert api.alive()
    stack.wait_http(api, "/health/ready", timeout=60)
    assert await all_finished(db, 5, 60) == {"completed": 5, "finished_twice": 0}


async def test_processes_started_before_postgresql_work_once_it_is_up(
    stack: Stack, database_url: str, services: Services
) -> None:
    stack.env.update(FAST_RECOVERY)
    stack.migrate()
    with postgres_stopped(services):
        api = stack.api(wait_ready=False)
        stack.worker()
        stack.wait_http(api, "/health/live")
        async with stack_client(stack) as http:
            ready = await http.get("/health/ready")
            assert ready.status_code == 503
            assert "database" in ready.json()["detail"]
            refused = await http.post("/tasks", json={"title": "too early"})
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
        await asyncio.sleep(2)
        assert api.alive()
    stack.wait_http(api, "/health/ready", timeout=60)
    async with stack_client(stack) as http:
        await create(http, 5)
    with psycopg.connect(database_url, autocommit=True) as db:
        assert await all_finished(db, 5, 60) == {"completed": 5, "finished_twice": 0}


async def test_a_postgresql_restart_under_load_loses_no_accepted_task(
    stack: Stack, db: psycopg.Connection, services: Services, database_url: str
) -> None:
    stack.env.update(FAST_RECOVERY)
    stack.migrate()
    api = stack.api()
    stack.worker()
    accepted: list[str] = []
    refused = 0

    async def load(seconds: float) -> None:
        nonlocal refused
        async with stack_client(stack) as http:
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                i += 1
                try:
                    answer = await http.post("/tasks", json={"title": f"load {i}"})
                except httpx.HTTPError:
                    refused += 1
                    continue
                if answer.status_code == 201:
                    accepted.append(answer.json()["id"])
                else:
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["content-type"] == "application/problem+json"
                    refused += 1
                    await asyncio.sleep(0.05)

    loader = asyncio.create_task(load(12))
    await asyncio.sleep(2)
    await asyncio.to_thread(services.restart_postgres)
    await loader
    assert api.alive()
    stack.wait_http(api, "/health/ready", timeout=60)
    async with stack_client(stack) as http:
        assert (await http.post("/tasks", json={"title": "after"})).status_code == 201
    with psycopg.connect(database_url, autocommit=True) as fresh:
        stored = {str(r[0]) for r in fresh.execute("SELECT id FROM tasks").fetchall()}
        assert set(accepted) <= stored, "an accepted task is missing"
        counts = await all_finished(fresh, len(stored), 90)
    assert counts["finished_twice"] == 0
    assert len(accepted) > 10


async def test_a_thousand_duplicate_dispatches_finish_each_task_once(
    stack: Stack, db: psycopg.Connection, rabbitmq_url: str
) -> None:
    stack.env.update(FAST_RECOVERY)
    stack.migrate()
    stack.api()
    async with stack_client(stack) as http:
        ids = await create(http, 10)
    stack.worker()
    stack.worker()
    async with amqp_client(rabbitmq_url) as amqp:
        for round_ in range(100):
            for task_id in ids:
                body = msgspec.json.encode({"task_id": task_id, "attempt": 1 + round_ % 3})
                await amqp.publish(body, queue="tasks.dispatch", message_id=str(uuid.uuid4()))
        assert await all_finished(db, 10, 60) == {"completed": 10, "finished_twice": 0}

        async def drained() -> bool:
            return await amqp.count("tasks.dispatch") == 0

        await eventually(drained, 60, "every duplicate to be consumed")
    transitions = db.execute("SELECT count(*) FROM task_history").fetchone()[0]
    assert transitions == 30  # created, claimed, finished: once each


# -- helpers ----------------------------------------------------------------------------------


def stack_client(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.base_url, timeout=15)


@contextlib.contextmanager
def postgres_stopped(services: Services) -> Iterator[None]:
    services.stop_postgres()
    try:
        yield
    finally:
        services.start_postgres()


@contextlib.contextmanager
def broker_stopped(services: Services) -> Iterator[None]:
    services.rabbitmqctl("stop_app")
    try:
        yield
    finally:
        services.rabbitmqctl("start_app")
        services.rabbitmqctl("await_startup")

