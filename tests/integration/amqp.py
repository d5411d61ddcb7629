"""Seeing what is really on RabbitMQ: queues through rabbitmqctl, messages through aio_pika."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from faststream.rabbit import RabbitBroker

from adapters.rabbitmq.connection import Consumer, make_broker, start_with_retry
from adapters.rabbitmq.lane import Lane
from tests.support.services import Services

from .waiting import eventually


def vhost_of(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def list_queues(services: Services, url: str, *columns: str) -> dict[str, dict[str, Any]]:
    """`rabbitmqctl list_queues` for the test vhost, by queue name."""
    done = services.rabbitmqctl("list_queues", "-p", vhost_of(url), "-q", "--formatter", "json",
                                "name", *columns)
    return {row["name"]: row for row in json.loads(done.stdout)}


class Connected(NamedTuple):
    broker: RabbitBroker
    lane: Lane


@asynccontextmanager
async def running(
    url: str, broker: RabbitBroker | None = None, consumers: Sequence[Consumer] = ()
) -> AsyncIterator[Connected]:
    """Connect the way the processes do (FastStream's broker, the topology, the lane, then the
    lane's `consumers`); always close both."""
    broker = broker or make_broker(url, graceful_timeout=5)
    lane = Lane(url, timeout=5)
    try:
        assert await asyncio.wait_for(start_with_retry(broker, lane, consumers=consumers), 20)
        yield Connected(broker, lane)
    finally:
        await lane.close()
        await broker.stop()


async def next_message(queue: AbstractQueue, timeout: float = 10) -> AbstractIncomingMessage:
    async def one() -> AbstractIncomingMessage | None:
        return await queue.get(no_ack=True, fail=False)

    return await eventually(one, f"a message on {queue.name}", timeout)


async def existing(channel: AbstractChannel, name: str) -> AbstractQueue:
    return await channel.declare_queue(name, passive=True)


async def send(
    channel: AbstractChannel, queue: str, body: bytes | object, **properties: Any
) -> None:
    """Publish like an outside client would (raw bytes as given, anything else as JSON)."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        properties.setdefault("content_type", "application/json")
    await channel.default_exchange.publish(aio_pika.Message(body, **properties), routing_key=queue)


def header(message: AbstractIncomingMessage, name: str) -> str:
    value = (message.headers or {}).get(name)
    return value.decode() if isinstance(value, bytes) else str(value)
