"""Dead letters on a real broker: listed in place, replayed through the normal path, none lost."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import psycopg
import pytest
from aio_pika.abc import AbstractChannel

from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.queues import CREATE, CREATE_DLQ, DISPATCH, DISPATCH_DLQ
from adapters.rabbitmq.deadletters import RabbitDeadLetters
from adapters.system import SystemClock, Uuid7Source
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from application.create import CreateTask
from application.deadletters import DeadLetter, ListDeadLetters, ReplayDeadLetters, Verdict
from application.messaging import Delivery
from application.model import Dispatch, NewTaskRequest
from entrypoints.intake import intake_handler
from tests.unit.fakes import CountingSignal

from .amqp import existing, next_message, running, send
from .waiting import eventually


async def count(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in `queue` now (a fresh channel: a robust channel answers a repeated
    passive declare from its cache)."""
    fresh = await channel.get_underlay_channel()
    declared = await fresh.queue_declare(queue, passive=True)
    return int(declared.message_count or 0)


async def test_a_bad_intake_message_is_listed_then_replayed_with_its_message_id(
    amqp_url: str, channel: AbstractChannel, pool: Any, db: psycopg.Connection,
) -> None:
    create = CreateTask(PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS), SystemClock(),
                        Uuid7Source(), CountingSignal())
    async with running(amqp_url, [(CREATE, 10, intake_handler(create))]) as broker:
        # refused once (the title is too long for a task, say, after an upgrade)... simulated
        # here by a message the intake rejects, then fixed up by hand in the DLQ copy below
        await send(channel, CREATE, {"nope": 1}, message_id="m-1")
        await eventually(lambda: count(channel, CREATE_DLQ), "a dead letter")
        queues = RabbitDeadLetters(broker)
        counts, letters = await ListDeadLetters(queues)(10)
        assert counts == {CREATE_DLQ: 1, DISPATCH_DLQ: 0}
        [letter] = letters
        assert (letter.message_id, letter.intake) == ("m-1", True)
        assert letter.reason and "unknown field `nope`" in letter.reason
        assert letter.dead_lettered_at is not None
        assert await count(channel, CREATE_DLQ) == 1  # listing takes nothing out

        replayed = await ReplayDeadLetters(queues, lambda: PostgresUnitOfWork(pool))(10)
        assert [r.verdict for r in replayed] == [Verdict.REPLAY]
        # back on tasks.create with its id; the intake refuses it again (it is still bad)
        await eventually(lambda: count(channel, CREATE_DLQ), "it to come back, refused again")
        again = await next_message(await existing(channel, CREATE_DLQ))
        assert again.message_id == "m-1" and json.loads(again.body) == {"nope": 1}


async def test_a_dispatch_dead_lettered_by_its_delivery_limit_goes_back_only_while_new(
    amqp_url: str, channel: AbstractChannel, pool: Any,
) -> None:
    create = CreateTask(PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS), SystemClock(),
                        Uuid7Source(), CountingSignal())
    waiting = (await create(NewTaskRequest(title="still new"))).task

    async def refuse(delivery: Delivery) -> None:
        await delivery.requeue()  # a poison message, as far as RabbitMQ can tell

    async with running(amqp_url, [(DISPATCH, 5, refuse)]) as broker:
        await broker.publish([Dispatch(waiting.id, 1), Dispatch(uuid.uuid4(), 1)])
        await eventually(lambda: _is(count(channel, DISPATCH_DLQ), 2), "two dead letters", 30)
        await broker.stop_consuming()
        _, letters = await ListDeadLetters(RabbitDeadLetters(broker))(10)
        assert all(d.reason and "delivery_limit" in d.reason for d in letters)
        assert {d.dispatch.task_id for d in letters if d.dispatch} == {
            waiting.id, *[d.dispatch.task_id for d in letters if d.dispatch and
                          d.dispatch.task_id != waiting.id]}

        replayed = await ReplayDeadLetters(RabbitDeadLetters(broker),
                                           lambda: PostgresUnitOfWork(pool))(10)

    outcome = {r.letter.dispatch.task_id: r.verdict for r in replayed if r.letter.dispatch}
    assert outcome[waiting.id] is Verdict.REPLAY
    assert sorted(v.value for v in outcome.values()) == ["dropped", "replayed"]
    back = await next_message(await existing(channel, DISPATCH))
    assert msgspec.json.decode(back.body, type=Dispatch) == Dispatch(waiting.id, 1)
    assert await count(channel, DISPATCH_DLQ) == 0


async def _is(value: Any, wanted: int) -> bool:
    return await value == wanted


async def test_a_replay_cut_short_loses_nothing(
    amqp_url: str, channel: AbstractChannel,
) -> None:
    seen: list[DeadLetter] = []

    async def crash_on_the_second(letter: DeadLetter) -> tuple[Verdict, str]:
        seen.append(letter)
        if len(seen) == 2:
            raise RuntimeError("the operator's laptop died")
        return Verdict.REPLAY, "ok"

    async with running(amqp_url) as broker:
        for n in range(3):
            await send(channel, CREATE_DLQ, {"title": f"t{n}"}, message_id=f"m{n}")
        with pytest.raises(RuntimeError):
            await RabbitDeadLetters(broker).replay(10, crash_on_the_second)

    # the first went back to tasks.create; the second and third are still dead letters
    assert await count(channel, CREATE) == 1
    assert await eventually(lambda: _is(count(channel, CREATE_DLQ), 2), "the rest back", 10)
