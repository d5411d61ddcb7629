"""Seeing what is really on RabbitMQ: queues through rabbitmqctl, messages through aio_pika."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from adapters.rabbitmq.broker import RabbitMQ
from application.messaging import DeliveryHandler
from domain.errors import ServiceUnavailable
from tests.support.services import Services

from .waiting import eventually


def vhost_of(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def list_queues(services: Services, url: str, *columns: str) -> dict[str, dict[str, Any]]:
    """`rabbitmqctl list_queues` for the test vhost, by queue name."""
    done = services.rabbitmqctl("list_queues", "-p", vhost_of(url), "-q", "--formatter", "json",
                                "name", *columns)
    return {row["name"]: row for row in json.loads(done.stdout)}


@asynccontextmanager
async def running(
    url: str, consumers: Sequence[tuple[str, int, DeliveryHandler]] = ()
) -> AsyncIterator[RabbitMQ]:
    """The broker adapter as the processes run it, with `consumers`; always closed."""
    broker = RabbitMQ(url, timeout=5)
    for queue, prefetch, handler in consumers:
        await broker.consume(queue, prefetch, handler)
    await broker.start()
    try:
        async def connected() -> bool:
            try:
                await broker.check()
            except ServiceUnavailable:
                return False
            return True

        await eventually(connected, "the broker adapter to connect", timeout=20)
        yield broker
    finally:
        await broker.stop_consuming()
        await broker.close()


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
