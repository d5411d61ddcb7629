"""The worker consumer on a real broker and database: finish once, ack after, reject poison."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from aio_pika.abc import AbstractChannel

from adapters.postgres.store import PostgresTaskStore
from adapters.queues import DISPATCH, DISPATCH_DLQ
from adapters.rabbitmq.broker import RabbitMQ
from adapters.system import EmulatedProcessor, SystemClock, Uuid7Source
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from application.create import CreateTask
from application.model import Dispatch, NewTaskRequest
from application.process import Outcome, ProcessTask
from application.stops import StopRequests
from domain.status import TaskStatus
from domain.task import Task
from entrypoints.inflight import Inflight
from entrypoints.worker import dispatch_handler
from tests.support.services import Services
from tests.unit.fakes import CountingSignal

from .amqp import existing, list_queues, next_message, running, send
from .conftest import UowFactory
from .waiting import eventually


class RecordedProcessTask(ProcessTask):
    """The real use case, also noting each outcome so that a test knows when all are handled."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.outcomes: list[Outcome] = []

    async def __call__(self, task_id: uuid.UUID) -> Outcome:
        outcome = await super().__call__(task_id)
        self.outcomes.append(outcome)
        return outcome


@asynccontextmanager
async def worker(amqp_url: str, pool: Any, failure_rate: float = 0.0, prefetch: int = 20,
                 draining: bool = False,
                 ) -> AsyncIterator[tuple[RabbitMQ, list[Outcome]]]:
    """`tasks worker` without the process: instant emulated work, seeded chance of failure."""
    process = RecordedProcessTask(
        PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS, linger=0.005, patient=True),
        EmulatedProcessor(0, 0, failure_rate, random.Random(1234)),
        SystemClock(), "worker-under-test", timedelta(seconds=30), StopRequests(),
    )
    inflight = Inflight("worker", grace=5)
    inflight.draining = draining
    consumer = (DISPATCH, prefetch, inflight.track(dispatch_handler(process)))
    async with running(amqp_url, consumers=[consumer]) as broker:
        yield broker, process.outcomes


async def created(steps: PostgresTaskStore) -> Task:
    create = CreateTask(steps, SystemClock(), Uuid7Source(), CountingSignal())
    return (await create(NewTaskRequest(title="work me"))).task


async def finished(uow: UowFactory, task_id: uuid.UUID) -> Task:
    async def final() -> Task | None:
        async with uow() as u:
            task = await u.tasks.get(task_id)
        return task if task is not None and task.status.is_final else None

    return await eventually(final, f"task {task_id} to finish")


async def handled(outcomes: list[Outcome], count: int) -> None:
    async def all_handled() -> bool:
        return len(outcomes) >= count

    await eventually(all_handled, f"the worker to handle {count} dispatches")


async def history(uow: UowFactory, task_id: uuid.UUID) -> list[tuple[Any, ...]]:
    async with uow() as u:
        return [(h.from_status, h.to_status) for h in await u.tasks.history(task_id)]


async def left_unacknowledged(channel: AbstractChannel) -> list[bytes]:
    """Call once the worker has stopped: what it never acknowledged is back on the queue, and a
    quorum queue hands returned messages out before a marker published afterwards."""
    await send(channel, DISPATCH, b"marker", message_id="marker")
    queue = await existing(channel, DISPATCH)
    left = []
    while (message := await next_message(queue)).message_id != "marker":
        left.append(message.body)
    assert await queue.get(fail=False) is None
    return left


async def stats_show_only_markers(services: Services, amqp_url: str,
                                  channel: AbstractChannel) -> None:
    """The same through `rabbitmqctl list_queues`, whose quorum-queue counts lag by a tick: once
    the worker has stopped, publish three markers and wait for the counts to be exactly them."""
    for _ in range(3):
        await send(channel, DISPATCH, b"marker")

    async def counts() -> tuple[int, int] | None:
        row = list_queues(services, amqp_url, "messages_ready", "messages_unacknowledged")[DISPATCH]
        seen = (row["messages_ready"], row["messages_unacknowledged"])
        return seen if seen == (3, 0) else None

    await eventually(counts, "rabbitmqctl to count just the 3 markers: ready 3, unacked 0",
                     timeout=20)


@pytest.mark.parametrize(("failure_rate", "final"), [(0.0, TaskStatus.COMPLETED),
                                                     (1.0, TaskStatus.ERROR)])
async def test_a_dispatched_task_is_finished_and_its_message_acknowledged(
    amqp_url: str, pool: Any, uow: UowFactory, steps: PostgresTaskStore, channel: AbstractChannel,
    failure_rate: float, final: TaskStatus,
) -> None:
    task = await created(steps)
    async with worker(amqp_url, pool, failure_rate) as (publisher, outcomes):
        await publisher.publish([Dispatch(task.id, 1)])
        done = await finished(uow, task.id)
        await handled(outcomes, 1)

    assert await left_unacknowledged(channel) == []
    assert outcomes == ["finished"]
    assert done.status is final and done.attempts == 1
    assert done.error == ("emulated failure" if final is TaskStatus.ERROR else None)
    assert done.lease_owner is None and done.finished_at is not None
    assert await history(uow, task.id) == [(None, "new"), ("new", "in_progress"),
                                           ("in_progress", final)]


async def test_fifty_duplicate_dispatches_finish_the_task_once(
    services: Services, amqp_url: str, pool: Any, uow: UowFactory, steps: PostgresTaskStore,
    channel: AbstractChannel,
) -> None:
    task = await created(steps)
    async with worker(amqp_url, pool, prefetch=20) as (publisher, outcomes):
        await publisher.publish([Dispatch(task.id, 1)] * 50)
        await handled(outcomes, 50)
        done = await finished(uow, task.id)

    await stats_show_only_markers(services, amqp_url, channel)
    assert sorted(outcomes) == ["finished"] + ["skipped"] * 49
    assert done.attempts == 1
    assert await history(uow, task.id) == [(None, "new"), ("new", "in_progress"),
                                           ("in_progress", "completed")]


async def test_a_dispatch_for_an_unknown_task_is_acknowledged_and_dropped(
    amqp_url: str, pool: Any, db: psycopg.Connection, channel: AbstractChannel,
) -> None:
    async with worker(amqp_url, pool) as (publisher, outcomes):
        await publisher.publish([Dispatch(uuid.uuid4(), 1)])
        await handled(outcomes, 1)

    assert outcomes == ["missing"]
    assert await left_unacknowledged(channel) == []
    assert db.execute("SELECT count(*) FROM tasks").fetchone() == (0,)


async def test_a_draining_worker_leaves_new_dispatches_for_another_worker(
    amqp_url: str, pool: Any, uow: UowFactory, steps: PostgresTaskStore, channel: AbstractChannel,
) -> None:
    task = await created(steps)
    async with worker(amqp_url, pool, draining=True) as (publisher, _):
        await publisher.publish([Dispatch(task.id, 1)])
        await asyncio.sleep(0.3)

    assert [json.loads(body)["task_id"] for body in await left_unacknowledged(channel)] == [
        str(task.id)]
    assert await history(uow, task.id) == [(None, "new")]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"not json at all", "application/json", id="not-json-labelled-json"),
        pytest.param(json.dumps({"task_id": "nope", "attempt": 1}).encode(), "application/json",
                     id="task-id-not-a-uuid"),
    ],
)
async def test_a_malformed_dispatch_goes_to_the_dead_letter_queue(
    amqp_url: str, pool: Any, channel: AbstractChannel, body: bytes, content_type: str | None,
) -> None:
    async with worker(amqp_url, pool):
        await send(channel, DISPATCH, body, message_id="poison", content_type=content_type)
        dead = await next_message(await existing(channel, DISPATCH_DLQ))

    assert (dead.body, dead.message_id) == (body, "poison")
