"""A real worker whose claim commits while the answer never reaches it does not keep the claim
alive: it expires and is recovered while that worker runs on."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from tests.support.processes import Stack, eventually
from tests.support.proxy import Proxy

#: the end of the claim's statement (claim_tasks) on the wire: it commits on its own, as soon
#: as the database has run it
CLAIM = b"id NOT IN (SELECT id FROM claimed)"
SHORT_LEASES = {
    "TASKS_LEASE_SECONDS": "3",
    "TASKS_RECOVERY_INTERVAL_SECONDS": "0.5",
    "TASKS_FAILURE_RATE": "0",
}


def history(db: psycopg.Connection, task_id: str) -> list[tuple[str | None, str, str | None]]:
    return db.execute("SELECT from_status, to_status, reason FROM task_history "
                      "WHERE task_id = %s ORDER BY id", [task_id]).fetchall()


async def test_a_claim_the_worker_never_heard_of_expires_and_is_finished_while_it_lives(
    stack: Stack, database_url: str, db: psycopg.Connection,
) -> None:
    stack.env.update(SHORT_LEASES)
    stack.migrate()
    stack.api()
    with Proxy.in_front_of(database_url) as proxy:
        worker = stack.worker(TASKS_DATABASE_URL=proxy.url_for(database_url))
        await eventually(lambda: '"event": "process_ready"' in worker.log(), 30,
                         "the worker to be ready")
        proxy.drop_replies_after(CLAIM)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
            task_id = (await http.post("/tasks", json={"title": "claimed unheard"})).json()["id"]
        await eventually(proxy.trap_fired.is_set, 15, "the claim to be sent")
        await eventually(lambda: db.execute("SELECT status FROM tasks WHERE id = %s",
                                            [task_id]).fetchone() == ("in_progress",),
                         10, "the claim to be committed")
        await asyncio.sleep(1)  # the worker waits for an answer that does not come
        proxy.pass_through(reset_existing=True)  # then learns that the connection died

        await eventually(lambda: db.execute("SELECT status FROM tasks WHERE id = %s",
                                            [task_id]).fetchone() == ("completed",),
                         30, "the unheard claim to expire and its task to be finished")
        assert worker.alive()
    steps = history(db, task_id)
    assert [(f, t) for f, t, _ in steps] == [
        (None, "new"), ("new", "in_progress"), ("in_progress", "new"),
        ("new", "in_progress"), ("in_progress", "completed")]
    assert steps[2][2] == "lease expired"
    assert '"event": "dispatch_skipped"' in worker.log()
