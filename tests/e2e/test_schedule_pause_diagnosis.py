"""End to end: bulk create, scheduled start, pausing dispatch and the diagnosis of a waiting
task, on real `tasks` processes, PostgreSQL and RabbitMQ; the worker stopped and killed."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from tests.support.processes import Stack, eventually

#: a task of the tests below works this long, so that it can be seen running
SLOW = {"TASKS_PROCESSING_MIN_SECONDS": "3", "TASKS_PROCESSING_MAX_SECONDS": "3",
        "TASKS_FAILURE_RATE": "0"}


async def state(http: httpx.AsyncClient, task_id: str) -> dict:
    answer = await http.get(f"/tasks/{task_id}/diagnosis")
    assert answer.status_code == 200, answer.text
    body: dict = answer.json()
    assert body["task_id"] == task_id and isinstance(body["detail"], str) and body["detail"]
    return body


async def wait_state(http: httpx.AsyncClient, task_id: str, wanted: str,
                     timeout: float = 30) -> dict:
    async def reached() -> dict | None:
        body = await state(http, task_id)
        return body if body["state"] == wanted else None

    found: dict = await eventually(reached, timeout, f"the diagnosis to say {wanted}")
    return found


async def worker_consuming(http: httpx.AsyncClient) -> None:
    """Returns once a worker has taken and finished a task: it is up and consuming."""
    probe = (await http.post("/tasks", json={"title": "probe"})).json()

    async def finished() -> bool:
        body = (await http.get(f"/tasks/{probe['id']}")).json()
        return body["status"] in ("completed", "error")

    await eventually(finished, 60, "a worker to finish a first task")


async def test_a_batch_is_created_in_order_all_or_none_and_processed(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.migrate()
    stack.api()
    stack.worker()
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        bad = await http.post("/tasks/batch", json={"tasks": [{"title": "ok"}, {"title": ""}]})
        assert bad.status_code == 400 and "tasks[1]" in bad.json()["detail"]
        assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0
        sent = [{"title": f"b{i}"} for i in range(200)]
        created = await http.post("/tasks/batch", json={"tasks": sent},
                                  headers={"Idempotency-Key": "batch-1"})
        assert created.status_code == 201, created.text
        items = created.json()["items"]
        assert [t["title"] for t in items] == [t["title"] for t in sent]
        again = await http.post("/tasks/batch", json={"tasks": sent},
                                headers={"Idempotency-Key": "batch-1"})
        assert again.headers.get("idempotent-replayed") == "true"
        assert [t["id"] for t in again.json()["items"]] == [t["id"] for t in items]
        other = await http.post("/tasks/batch", json={"tasks": sent[:10]},
                                headers={"Idempotency-Key": "batch-1"})
        assert other.status_code == 409

        def all_final() -> bool:
            return db.execute("SELECT count(*) FROM tasks WHERE status IN "
                              "('completed', 'error')").fetchone()[0] == 200

        await eventually(all_final, 60, "the batch to be processed")
        assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 200


async def test_a_scheduled_task_starts_within_a_second_after_its_time_not_before(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.migrate()
    stack.api()
    stack.worker()
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        await worker_consuming(http)  # "when a worker is free": one is, from here on
        at = datetime.now(UTC) + timedelta(seconds=3)
        created = await http.post("/tasks", json={
            "title": "at", "run_at": at.isoformat(timespec="milliseconds")})
        delayed = await http.post("/tasks", json={"title": "in", "delay_seconds": 2.5})
        assert created.status_code == delayed.status_code == 201
        task, later = created.json(), delayed.json()
        looked = await state(http, task["id"])
        assert looked["state"] == "scheduled"
        for one in (task, later):
            done = await eventually(
                lambda one=one: db.execute(
                    "SELECT started_at, run_at FROM tasks WHERE id = %s AND started_at IS NOT "
                    "NULL", [one["id"]]).fetchone(), 30, "the scheduled task to start")
            started, run_at = done
            assert run_at <= started < run_at + timedelta(seconds=1), (started, run_at)
        cancel_me = (await http.post("/tasks", json={"title": "no", "delay_seconds": 600})
                     ).json()
        cancelled = await http.post(f"/tasks/{cancel_me['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "error"


async def test_pause_holds_every_claim_and_resume_lets_them_go(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.migrate()
    stack.api()
    stack.worker()
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        paused = await http.post("/dispatch/pause", json={"reason": "deploy"})
        assert paused.status_code == 200 and paused.json()["paused"] is True
        assert (await http.get("/dispatch")).json()["reason"] == "deploy"
        ids = [(await http.post("/tasks", json={"title": f"p{i}"})).json()["id"]
               for i in range(5)]
        looked = await wait_state(http, ids[0], "paused")
        assert looked["facts"]["since"] is not None
        await eventually(lambda: _dispatched(db, ids), 10, "the dispatches to reach the queue")
        assert db.execute("SELECT count(*) FROM tasks WHERE status <> 'new' OR attempts > 0"
                          ).fetchone()[0] == 0  # held, not claimed, nothing spent
        resumed = await http.post("/dispatch/resume")
        assert resumed.json()["paused"] is False

        def done() -> bool:
            return db.execute("SELECT count(*) FROM tasks WHERE status IN "
                              "('completed', 'error')").fetchone()[0] == 5

        await eventually(done, 10, "the held tasks to be claimed after the resume")
        assert db.execute("SELECT max(attempts) FROM tasks").fetchone()[0] == 1


def _dispatched(db: psycopg.Connection, ids: list[str]) -> bool:
    return db.execute("SELECT count(*) FROM dispatch_outbox WHERE task_id = ANY(%s::uuid[])",
                      [ids]).fetchone()[0] == 0


async def test_the_diagnosis_tells_each_state_a_waiting_task_can_be_in(
    stacks: object, database_url: str, rabbitmq_url: str
) -> None:
    stack: Stack = stacks(database_url, rabbitmq_url, TASKS_LEASE_SECONDS="3",  # type: ignore[operator]
                          TASKS_RECOVERY_INTERVAL_SECONDS="60", **SLOW)
    stack.migrate()
    stack.api()
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        task = (await http.post("/tasks", json={"title": "alone"})).json()
        waiting = await wait_state(http, task["id"], "no_workers")
        assert waiting["facts"] == {"consumers": 0}
        worker = stack.worker()
        running = await wait_state(http, task["id"], "running")
        assert running["facts"]["attempt"] == 1 and running["facts"]["worker"]
        worker.kill()  # its claims stop being renewed
        expired = await wait_state(http, task["id"], "lease_expired", timeout=15)
        assert expired["facts"]["lease_expires_at"] is not None
        # created once no worker is alive: a live worker of 100 slots would claim them at once
        behind = [(await http.post("/tasks", json={"title": f"q{i}"})).json()["id"]
                  for i in range(3)]
        stack.worker(TASKS_WORKER_CONCURRENCY="1")  # busy with one task: the rest queue
        queued = await wait_state(http, behind[-1], "queued")
        assert queued["facts"]["consumers"] == 1 and queued["facts"]["ahead"] >= 0
        finished = await wait_state(http, behind[0], "finished")
        assert finished["facts"]["error"] is None
        assert signal.SIGKILL  # the dead worker was killed, not stopped
