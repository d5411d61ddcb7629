"""Retry and cancel on real processes: a cancel reaches the worker running the task within
2 s, each race ends one way only, and a cancelled task whose worker died is not run again."""

from __future__ import annotations

import asyncio
import time

import httpx
import psycopg
import pytest

from tests.support.processes import Stack, eventually
from tests.support.sse import open_stream

ADMIN, READER = "ops-secret-0123456789", "viewer-secret-0123456789"
KEYS = f"ops:admin:{ADMIN},viewer:read:{READER}"


def finals(db: psycopg.Connection, task_id: str) -> list[tuple[str, str | None]]:
    return db.execute("SELECT to_status, actor FROM task_history WHERE task_id = %s AND "
                      "to_status IN ('completed', 'error') ORDER BY id", (task_id,)).fetchall()


async def test_cancelling_a_running_task_reaches_its_worker_within_two_seconds(
    stack: Stack, db: psycopg.Connection,
) -> None:
    stack.migrate()
    stack.api(TASKS_API_KEYS=KEYS)
    stack.worker(TASKS_PROCESSING_MIN_SECONDS="30", TASKS_PROCESSING_MAX_SECONDS="30")
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
        task = (await http.post("/tasks", json={"title": "long job"})).json()
        async with open_stream(stack.base_url, f"/tasks/{task['id']}/events",
                               headers=admin) as stream:
            await stream.until(2, timeout=20)  # new, in_progress: a worker runs it
            asked = time.monotonic()
            answer = await http.post(f"/tasks/{task['id']}/cancel", json={"reason": "typo"})
            assert answer.status_code == 202 and answer.json()["status"] == "in_progress"
            await asyncio.wait_for(stream.ended.wait(), 5)
        events = stream.events
    assert events[-1].at - asked < 2.0
    assert [(e.data["to_status"], e.data["actor"]) for e in events[-2:]] == [
        ("in_progress", "ops"), ("error", "ops")]
    assert events[-1].data["task"]["error"] == "cancelled by ops: typo"
    assert finals(db, task["id"]) == [("error", "ops")]


async def test_cancel_new_retry_error_and_their_repeats(stack: Stack, db: psycopg.Connection,
                                                        ) -> None:
    stack.migrate()
    stack.api(TASKS_API_KEYS=KEYS)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    reader = {"Authorization": f"Bearer {READER}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=admin) as http:
        task = (await http.post("/tasks", json={"title": "nobody runs this yet"})).json()
        refused = await http.post(f"/tasks/{task['id']}/cancel", headers=reader)
        assert refused.status_code == 403
        first = await http.post(f"/tasks/{task['id']}/cancel", json={"reason": "dup"})
        again = await http.post(f"/tasks/{task['id']}/cancel")
        assert (first.status_code, again.status_code) == (200, 409)
        assert first.json()["error"] == "cancelled by ops: dup"
        retried = await http.post(f"/tasks/{task['id']}/retry", json={"reason": "not a dup"})
        twice = await http.post(f"/tasks/{task['id']}/retry")
        assert (retried.status_code, twice.status_code) == (200, 409)
        assert retried.json()["status"] == "new" and retried.json()["error"] is None
        stack.worker()

        async def done() -> bool:
            body = (await http.get(f"/tasks/{task['id']}")).json()
            return body["status"] in ("completed", "error")

        await eventually(done, 30, "the retried task to be processed")
        history = (await http.get(f"/tasks/{task['id']}/history")).json()
    assert [(h["from_status"], h["to_status"], h["actor"], h["reason"]) for h in history[:3]] == [
        (None, "new", None, None), ("new", "error", "ops", "dup"),
        ("error", "new", "ops", "not a dup")]
    assert [h["to_status"] for h in history[3:]] == ["in_progress", history[-1]["to_status"]]
    assert len(finals(db, task["id"])) == 2  # cancelled once, processed once after the retry


async def test_cancel_against_finish_one_of_them_wins_and_the_history_says_which(
    stack: Stack, db: psycopg.Connection,
) -> None:
    """Tasks that finish in about the time the cancel takes: each ends exactly once, either
    completed (the cancel came too late: 409, or a 202 that changed nothing) or cancelled."""
    stack.migrate()
    stack.api()
    stack.worker(TASKS_PROCESSING_MIN_SECONDS="0.05", TASKS_PROCESSING_MAX_SECONDS="0.05",
                 TASKS_FAILURE_RATE="0")
    outcomes: dict[str, int] = {}
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=stack.base_url) as http, \
            open_stream(stack.base_url, "/events?status=in_progress") as claims:
        await asyncio.sleep(0.3)
        for n in range(30):
            task_id = (await http.post("/tasks", json={"title": f"race {n}"})).json()["id"]
            ids.append(task_id)
            await eventually(lambda: any(e.data["task_id"] == task_id  # noqa: B023
                                         for e in claims.events), 10, "the claim", every=0.005)
            await asyncio.sleep((n % 10) * 0.008)  # 0 to 72 ms into 50 ms of work
            answer = await http.post(f"/tasks/{task_id}/cancel")
            outcomes[str(answer.status_code)] = outcomes.get(str(answer.status_code), 0) + 1

        async def all_final() -> bool:
            rows = db.execute("SELECT count(*) FROM tasks WHERE status IN "
                              "('completed', 'error')").fetchone()
            return rows is not None and rows[0] == len(ids)

        await eventually(all_final, 30, "every task to end")
    assert set(outcomes) <= {"202", "409"} and len(outcomes) == 2, outcomes  # both won some
    for task_id in ids:
        ends = finals(db, task_id)
        status, error = db.execute("SELECT status, error FROM tasks WHERE id = %s",
                                   (task_id,)).fetchone()
        assert len(ends) == 1 and ends[0][0] == status
        assert status == "completed" or error.startswith("cancelled")
    print("cancel answers:", outcomes)


@pytest.mark.chaos
async def test_a_cancelled_task_whose_worker_died_is_ended_by_recovery_not_run_again(
    stack: Stack, db: psycopg.Connection,
) -> None:
    stack.migrate()
    stack.api()
    fast_lease = {"TASKS_LEASE_SECONDS": "2", "TASKS_LEASE_RENEW_SECONDS": "0.5",
                  "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5"}
    doomed = stack.worker(TASKS_PROCESSING_MIN_SECONDS="60", TASKS_PROCESSING_MAX_SECONDS="60",
                          **fast_lease)
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        task = (await http.post("/tasks", json={"title": "worker will die"})).json()

        async def running() -> bool:
            return (await http.get(f"/tasks/{task['id']}")).json()["status"] == "in_progress"

        await eventually(running, 20, "the worker to claim it")
        doomed.kill()  # SIGKILL: no hand-back, the lease is left to expire
        asked = await http.post(f"/tasks/{task['id']}/cancel", json={"reason": "abandon"})
        assert asked.status_code == 202
        stack.worker(**fast_lease)  # a live worker's recovery sweep finds the expired lease

        async def ended() -> dict | None:
            body = (await http.get(f"/tasks/{task['id']}")).json()
            return body if body["status"] == "error" else None

        final = await eventually(ended, 20, "recovery to end it cancelled")
    assert final["error"] == "cancelled: abandon" and final["attempts"] == 1
    claims = db.execute("SELECT count(*) FROM task_history WHERE task_id = %s AND "
                        "to_status = 'in_progress' AND from_status = 'new'",
                        (task["id"],)).fetchone()[0]
    assert claims == 1  # never run again
