"""End to end: real `tasks migrate`, `api` and `worker` processes on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import json
import uuid

import httpx
import psycopg

from tests.support.amqp import amqp_client
from tests.support.processes import Stack, eventually

FINAL = {"completed", "error"}


def finished_counts(db: psycopg.Connection) -> dict[str, int]:
    """Tasks per status, and how many tasks were finished more than once (must stay 0)."""
    counts = dict(db.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall())
    counts["finished_twice"] = db.execute(
        """SELECT count(*) FROM (SELECT task_id FROM task_history
           WHERE to_status IN ('completed', 'error') GROUP BY task_id HAVING count(*) > 1) t"""
    ).fetchone()[0]
    return counts


async def test_a_task_created_over_http_reaches_a_final_status(stack: Stack) -> None:
    stack.migrate()
    stack.api()
    stack.worker()
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        created = await http.post("/tasks", json={"title": "resize", "payload": {"w": 640}})
        assert created.status_code == 201, created.text
        task = created.json()
        assert created.headers["location"] == f"/tasks/{task['id']}"
        assert task["status"] == "new"

        async def final() -> dict | None:
            body = (await http.get(f"/tasks/{task['id']}")).json()
            return body if body["status"] in FINAL else None

        done = await eventually(final, 30, "the task to finish")
        assert done["attempts"] == 1
        assert done["started_at"] and done["finished_at"]
        assert (done["error"] is None) == (done["status"] == "completed")
        history = (await http.get(f"/tasks/{task['id']}/history")).json()
        assert [(h["from_status"], h["to_status"]) for h in history] == [
            (None, "new"), ("new", "in_progress"), ("in_progress", done["status"])
        ]


async def test_a_task_published_on_amqp_is_created_replied_and_processed(
    stack: Stack, rabbitmq_url: str
) -> None:
    stack.migrate()
    stack.api()
    stack.worker()
    async with amqp_client(rabbitmq_url) as amqp:
        replies = await amqp.reply_queue()
        await amqp.publish(b'{"title": "from amqp", "payload": {"n": 1}}',
                           message_id="msg-1", reply_to=replies.name, correlation_id="corr-1")
        reply = await amqp.get(replies.name, timeout=30)
        assert reply.correlation_id == "corr-1"
        task = json.loads(reply.body)
        assert task["source"] == "amqp" and task["title"] == "from amqp"
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        async def status() -> str | None:
            s = (await http.get(f"/tasks/{task['id']}")).json()["status"]
            return s if s in FINAL else None

        await eventually(status, 30, "the AMQP task to finish")


async def test_malformed_messages_are_dead_lettered_while_valid_ones_keep_flowing(
    stack: Stack, rabbitmq_url: str, db: psycopg.Connection
) -> None:
    stack.migrate()
    stack.api()
    bad = [b"not json", b'{"title": ""}', b'{"title": "x", "surprise": 1}', b'["a list"]']
    async with amqp_client(rabbitmq_url) as amqp:
        for i, body in enumerate(bad):
            await amqp.publish(body, message_id=f"bad-{i}")
            await amqp.publish(f'{{"title": "good {i}"}}'.encode(), message_id=f"good-{i}")

        def stored() -> bool:
            return db.execute("SELECT count(*) FROM tasks").fetchone()[0] == len(bad)

        await eventually(stored, 30, "the valid messages to become tasks")
        reasons = []
        for _ in bad:
            dead = await amqp.get("tasks.create.dlq")
            reasons.append(dead.headers["x-tasks-reject-reason"])
            assert dead.body in bad
        assert all(reasons), reasons
        assert await amqp.count("tasks.create") == 0


async def test_the_same_message_id_twice_creates_one_task(
    stack: Stack, rabbitmq_url: str, db: psycopg.Connection
) -> None:
    stack.migrate()
    stack.api()
    async with amqp_client(rabbitmq_url) as amqp:
        for _ in range(2):
            await amqp.publish(b'{"title": "once"}', message_id="dup-1")
        await amqp.publish(b'{"title": "marker"}', message_id="marker")

        def both_seen() -> bool:
            found = db.execute("SELECT count(*) FROM tasks WHERE title = 'marker'").fetchone()
            return found[0] == 1

        await eventually(both_seen, 30, "the marker task")
        async def drained() -> bool:
            return await amqp.count("tasks.create") == 0

        await eventually(drained, 10, "intake to drain")
    assert db.execute("SELECT count(*) FROM tasks WHERE title = 'once'").fetchone()[0] == 1


async def test_a_burst_of_creates_is_finished_exactly_once_each(
    stack: Stack, db: psycopg.Connection
) -> None:
    stack.migrate()
    stack.api()
    stack.worker()
    stack.worker()
    total = 300
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        import asyncio

        answers = await asyncio.gather(*(
            http.post("/tasks", json={"title": f"burst {i}"}) for i in range(total)
        ))
    assert [a.status_code for a in answers] == [201] * total
    ids = {uuid.UUID(a.json()["id"]) for a in answers}
    assert len(ids) == total

    def all_final() -> dict[str, int] | None:
        counts = finished_counts(db)
        return counts if counts.get("completed", 0) + counts.get("error", 0) == total else None

    counts = await eventually(all_final, 90, "every task to finish")
    assert counts["finished_twice"] == 0
    per_task = db.execute(
        """SELECT count(*) FILTER (WHERE to_status = 'in_progress'),
                  count(*) FILTER (WHERE to_status IN ('completed', 'error'))
           FROM task_history"""
    ).fetchone()
    assert per_task == (total, total)
