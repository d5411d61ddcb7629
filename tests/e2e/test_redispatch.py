"""No task waits in `new` with nothing on its way: lost dispatches are sent again, on real
processes and a real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from adapters.queues import DISPATCH, DISPATCH_DLQ, dispatch_queues
from tests.e2e.test_service import finished_counts
from tests.support.amqp import AmqpClient, amqp_client
from tests.support.processes import Stack, eventually

SWEEP_FAST = {"TASKS_REDISPATCH_SECONDS": "1", "TASKS_FAILURE_RATE": "0"}


@pytest.fixture
async def amqp(stack: Stack, rabbitmq_url: str) -> AsyncIterator[AmqpClient]:
    """The stack migrated, its API running (its relay publishes), no worker yet."""
    stack.env.update(SWEEP_FAST)
    stack.migrate()
    stack.api()
    async with amqp_client(rabbitmq_url) as client:
        yield client


async def create(stack: Stack) -> str:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        answer = await http.post("/tasks", json={"title": "dispatched into trouble"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def created_and_queued(stack: Stack, amqp: AmqpClient) -> str:
    """A task whose dispatch waits in the dispatch queue, with no worker to take it."""
    task_id = await create(stack)

    async def queued() -> bool:
        return await amqp.count(DISPATCH) == 1

    await eventually(queued, 15, "the dispatch to reach its queue")
    return task_id


def status(db: psycopg.Connection, task_id: str) -> tuple[str, str | None]:
    row = db.execute("SELECT status, error FROM tasks WHERE id = %s", [task_id]).fetchone()
    assert row is not None
    return row[0], row[1]


def sweeps(db: psycopg.Connection, task_id: str) -> list[tuple[str, str, str]]:
    """The history rows the sweep wrote: (from, to, reason)."""
    return db.execute("SELECT from_status, to_status, reason FROM task_history "
                      "WHERE task_id = %s AND actor = 'sweep' ORDER BY id", [task_id]).fetchall()


async def finished(db: psycopg.Connection, task_id: str) -> None:
    await eventually(lambda: status(db, task_id)[0] == "completed", 30,
                     "the task to be dispatched again and finished")
    assert sweeps(db, task_id)[0][:2] == ("new", "new")


async def test_a_purged_dispatch_is_sent_again_and_its_task_finished(
    stack: Stack, amqp: AmqpClient, db: psycopg.Connection,
) -> None:
    task_id = await created_and_queued(stack, amqp)
    await (await amqp.channel.declare_queue(DISPATCH, passive=True)).purge()
    worker = stack.worker()
    await finished(db, task_id)
    assert '"event": "task_redispatched"' in worker.log()


async def test_two_sweeping_workers_send_each_lost_dispatch_again_and_finish_each_task_once(
    stack: Stack, amqp: AmqpClient, db: psycopg.Connection,
) -> None:
    ids = [await create(stack) for _ in range(20)]

    async def all_queued() -> bool:
        return await amqp.count(DISPATCH) == len(ids)

    await eventually(all_queued, 15, "every dispatch to reach its queue")
    await (await amqp.channel.declare_queue(DISPATCH, passive=True)).purge()
    stack.worker()
    stack.worker()
    await eventually(lambda: finished_counts(db).get("completed") == len(ids), 60,
                     "every task to be dispatched again and finished")
    assert finished_counts(db)["finished_twice"] == 0
    assert all(sweeps(db, task_id) for task_id in ids)


async def test_a_dead_lettered_dispatch_is_sent_again_and_its_task_finished(
    stack: Stack, amqp: AmqpClient, db: psycopg.Connection,
) -> None:
    task_id = await created_and_queued(stack, amqp)
    queue = await amqp.channel.declare_queue(DISPATCH, passive=True)
    message = await queue.get(timeout=5)
    assert message is not None
    await message.reject(requeue=False)  # RabbitMQ moves it to the dead-letter queue

    async def dead_lettered() -> bool:
        return await amqp.count(DISPATCH_DLQ) == 1

    await eventually(dead_lettered, 15, "the dispatch to be dead-lettered")
    stack.worker()
    await finished(db, task_id)


async def test_a_dispatch_sent_to_a_deleted_queue_is_sent_again_once_it_is_back(
    stack: Stack, amqp: AmqpClient, db: psycopg.Connection,
) -> None:
    await amqp.channel.queue_delete(DISPATCH)
    task_id = await create(stack)
    await eventually(lambda: db.execute("SELECT count(*) FROM dispatch_outbox").fetchone()
                     == (0,), 15, "the relay to send the dispatch into nowhere")
    stack.worker()  # declares the queue again as it connects
    await finished(db, task_id)


async def test_a_task_whose_dispatches_are_all_lost_ends_in_error_saying_why(
    stack: Stack, amqp: AmqpClient, db: psycopg.Connection,
) -> None:
    stack.env["TASKS_MAX_ATTEMPTS"] = "1"
    task_id = await created_and_queued(stack, amqp)
    await (await amqp.channel.declare_queue(DISPATCH, passive=True)).purge()
    stack.worker()
    await eventually(lambda: status(db, task_id)[0] == "error", 30, "the task to end")
    reason = "never claimed: dispatched once and each dispatch was lost"
    assert (status(db, task_id)[1] or "").startswith(reason)
    assert [(f, t) for f, t, _ in sweeps(db, task_id)] == [("new", "error")]


async def test_fewer_dispatch_queues_on_a_running_system_lose_nothing(
    stack: Stack, rabbitmq_url: str, db: psycopg.Connection,
) -> None:
    """Tasks dispatched over three queues with no worker up; then the system runs on one
    queue: what waits in the two queues nobody consumes any more is found by the sweep and
    sent again through the one that is, and every task finishes once."""
    stack.env.update(SWEEP_FAST)
    stack.migrate()
    split = stack.api(TASKS_DISPATCH_QUEUES="3")
    ids = [await create(stack) for _ in range(12)]
    async with amqp_client(rabbitmq_url) as amqp:
        async def all_queued() -> bool:
            counts = [await amqp.count(q) for q in dispatch_queues(3)]
            return sum(counts) == len(ids) and all(counts[1:])
        await eventually(all_queued, 15, "the dispatches to reach the three queues")
        split.stop()
        stack.api()  # one queue from now on, and a worker of it
        stack.worker()

        def all_finished() -> bool:
            return db.execute("SELECT count(*) FROM tasks WHERE status = 'completed'"
                              ).fetchone()[0] == len(ids)

        await eventually(all_finished, 30, "every task to finish on the one queue")
        stranded = sum([await amqp.count(q) for q in dispatch_queues(3)[1:]])
    assert finished_counts(db) == {"completed": len(ids), "finished_twice": 0}
    assert stranded > 0  # what the retired queues held is still there, and harmless
