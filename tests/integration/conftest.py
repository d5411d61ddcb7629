"""Integration fixtures: the task store and units of work on the test database, a vhost and
channel for AMQP tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel

from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.rabbitmq.topology import Topology
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from tests.support.services import Services

UowFactory = Callable[[], PostgresUnitOfWork]


@pytest.fixture
def uow(pool: Any) -> UowFactory:
    """What the container gives the sweeps and reads: a fresh unit of work on the test pool
    per call."""
    return lambda: PostgresUnitOfWork(pool)


@pytest.fixture
def steps(pool: Any) -> PostgresTaskStore:
    """The steps of a task's life on the test pool, as the container gives them to the API."""
    return PostgresTaskStore(pool, hold=OUTBOX_HOLD_SECONDS)


@pytest.fixture(scope="module")
def module_vhost(services: Services) -> Iterator[str]:
    url = services.new_vhost()
    yield url
    services.drop_vhost(url)


@pytest.fixture
async def amqp_url(module_vhost: str) -> str:
    """The module's own vhost with none of the service's queues in it, as if fresh.

    A vhost per test costs three rabbitmqctl runs (seconds each on a busy broker); deleting
    the service's queues gives the same clean slate in milliseconds.
    """
    connection = await aio_pika.connect_robust(module_vhost)
    try:
        channel = await connection.channel()
        for queue in Topology(8).all:  # up to eight dispatch queues
            await channel.queue_delete(queue.name)
    finally:
        await connection.close()
    return module_vhost


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain aio_pika channel, to see what really is on the queues."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()
