"""AMQP intake on a real broker and database: create once, reply, dead-letter what is no task."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from adapters.postgres.store import PostgresTaskStore
from adapters.queues import CREATE, CREATE_DLQ, REASON_HEADER
from adapters.rabbitmq.broker import RabbitMQ
from adapters.system import SystemClock, Uuid7Source
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from application.create import CreateTask
from entrypoints.intake import intake_handler
from tests.unit.fakes import CountingSignal

from .amqp import existing, header, next_message, running, send


@pytest.fixture
async def intake(amqp_url: str, pool: Any) -> AsyncIterator[RabbitMQ]:
    """The intake consumer as `tasks api` runs it, on the test database and vhost."""
    create = CreateTask(PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS), SystemClock(),
                        Uuid7Source(), CountingSignal())
    async with running(amqp_url, [(CREATE, 10, intake_handler(create))]) as broker:
        yield broker


@pytest.fixture
async def replies(channel: AbstractChannel) -> AbstractQueue:
    return await channel.declare_queue(exclusive=True)


async def ask(channel: AbstractChannel, replies: AbstractQueue, body: bytes | object,
              message_id: str | None = None, **properties: Any) -> AbstractIncomingMessage:
    """Send to tasks.create with reply_to set and wait for the answer with our correlation id."""
    correlation_id = uuid.uuid4().hex
    await send(channel, CREATE, body, message_id=message_id, reply_to=replies.name,
               correlation_id=correlation_id, **properties)
    answer = await next_message(replies)
    assert answer.correlation_id == correlation_id
    return answer


def stored(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute("SELECT id, title, source, idempotency_key FROM tasks").fetchall()


async def test_a_valid_message_creates_one_task_and_replies_with_it(
    intake: RabbitMQ, channel: AbstractChannel, replies: AbstractQueue,
    db: psycopg.Connection,
) -> None:
    answer = await ask(channel, replies, {"title": "from amqp", "payload": {"n": [1, "ü"]}},
                       message_id="msg-1")

    task = json.loads(answer.body)
    assert answer.content_type == "application/json"
    assert task["title"] == "from amqp" and task["payload"] == {"n": [1, "ü"]}
    assert (task["source"], task["status"], task["attempts"]) == ("amqp", "new", 0)
    assert stored(db) == [(uuid.UUID(task["id"]), "from amqp", "amqp", "msg-1")]
    assert db.execute("SELECT task_id FROM dispatch_outbox").fetchall() == [
        (uuid.UUID(task["id"]),)]


async def test_a_payload_with_nul_in_keys_and_strings_is_stored_whole_and_replied(
    intake: RabbitMQ, channel: AbstractChannel, replies: AbstractQueue,
    db: psycopg.Connection,
) -> None:
    payload = {"k\x00": ["a\x00b", {"\x00": "\x00"}], "plain": 1}
    answer = await ask(channel, replies, {"title": "nul inside", "payload": payload},
                       message_id="msg-nul")

    task = json.loads(answer.body)
    assert answer.content_type == "application/json"
    assert task["payload"] == payload
    assert db.execute("SELECT payload FROM tasks").fetchall() == [(payload,)]
    assert await (await existing(channel, CREATE_DLQ)).get(fail=False) is None


async def test_the_same_message_id_twice_creates_one_task(
    intake: RabbitMQ, channel: AbstractChannel, replies: AbstractQueue,
    db: psycopg.Connection,
) -> None:
    body = {"title": "only once"}

    first = await ask(channel, replies, body, message_id="msg-dup")
    second = await ask(channel, replies, body, message_id="msg-dup")

    assert json.loads(first.body) == json.loads(second.body)
    assert len(stored(db)) == 1


JSON = "application/json"
BAD = [
    pytest.param(b"{not json", None, "malformed", id="not-json"),
    pytest.param(b"{not json", JSON, "malformed", id="not-json-labelled-json"),
    pytest.param({"title": "x", "colour": "red"}, JSON, "unknown field `colour`",
                 id="unknown-field"),
    pytest.param({"title": ""}, JSON, "$.title", id="empty-title"),
    pytest.param({"title": "nul \x00"}, JSON, "NUL", id="nul-in-title"),
]


@pytest.mark.parametrize(("body", "content_type", "reason"), BAD)
async def test_a_message_that_cannot_be_a_task_is_dead_lettered_with_the_reason(
    intake: RabbitMQ, channel: AbstractChannel, replies: AbstractQueue,
    db: psycopg.Connection, body: Any, content_type: str | None, reason: str,
) -> None:
    answer = await ask(channel, replies, body, message_id="bad-1", content_type=content_type)
    after = await ask(channel, replies, {"title": "still consuming"}, message_id="good-1")

    dead = await next_message(await existing(channel, CREATE_DLQ))
    problem = json.loads(answer.body)
    assert answer.content_type == "application/problem+json"
    assert problem["status"] == 400 and reason in problem["detail"]
    assert reason in header(dead, REASON_HEADER)
    assert dead.message_id == "bad-1"
    assert dead.body == (body if isinstance(body, bytes) else json.dumps(body).encode())
    assert json.loads(after.body)["title"] == "still consuming"
    assert [row[1] for row in stored(db)] == ["still consuming"]


async def test_the_same_message_id_with_another_body_is_dead_lettered_as_a_key_conflict(
    intake: RabbitMQ, channel: AbstractChannel, replies: AbstractQueue,
    db: psycopg.Connection,
) -> None:
    await ask(channel, replies, {"title": "first"}, message_id="msg-k")

    answer = await ask(channel, replies, {"title": "second"}, message_id="msg-k")

    dead = await next_message(await existing(channel, CREATE_DLQ))
    assert json.loads(answer.body)["status"] == 409
    assert "idempotency key 'msg-k'" in header(dead, REASON_HEADER)
    assert json.loads(dead.body) == {"title": "second"}
    assert [row[1] for row in stored(db)] == ["first"]


async def test_a_bad_message_without_reply_to_is_still_dead_lettered(
    intake: RabbitMQ, channel: AbstractChannel, replies: AbstractQueue,
    db: psycopg.Connection,
) -> None:
    await send(channel, CREATE, {"nope": 1}, message_id="quiet")
    await ask(channel, replies, {"title": "next"})

    dead = await next_message(await existing(channel, CREATE_DLQ))
    assert dead.message_id == "quiet"
    assert "unknown field `nope`" in header(dead, REASON_HEADER)
    assert await replies.get(fail=False) is None

