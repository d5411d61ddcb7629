"""The RabbitMQ adapter on a real broker: topology, confirmed publishes, consumers' prefetch."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel

from adapters.queues import CREATE, CREATE_DLQ, DISPATCH, DISPATCH_DLQ
from adapters.rabbitmq.broker import RabbitMQ
from application.messaging import Delivery
from application.model import Dispatch
from domain.errors import ServiceUnavailable
from tests.support.proxy import Proxy
from tests.support.services import Services

from .amqp import existing, list_queues, next_message, running, send
from .waiting import eventually

TO_CREATE_DLQ = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": CREATE_DLQ}
TO_DISPATCH_DLQ = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DISPATCH_DLQ}


def declared(services: Services, amqp_url: str) -> dict[str, tuple[bool, str, dict[str, Any]]]:
    rows = list_queues(services, amqp_url, "durable", "arguments", "type")
    return {
        name: (row["durable"], row["type"], {k: v for k, _, v in row["arguments"]})
        for name, row in rows.items()
    }


async def test_starting_a_broker_declares_the_durable_topology(
    services: Services, amqp_url: str
) -> None:
    async with running(amqp_url):
        queues = declared(services, amqp_url)

    assert queues[CREATE] == (True, "classic", {**TO_CREATE_DLQ, "x-queue-type": "classic"})
    assert queues[CREATE_DLQ][:2] == (True, "classic")
    assert queues[DISPATCH] == (
        True, "quorum", {**TO_DISPATCH_DLQ, "x-delivery-limit": 20, "x-queue-type": "quorum"})
    assert queues[DISPATCH_DLQ][:2] == (True, "classic")


async def test_two_brokers_declare_the_same_topology_without_conflict(
    services: Services, amqp_url: str, channel: AbstractChannel
) -> None:
    async with running(amqp_url):
        before = declared(services, amqp_url)
        async with running(amqp_url):
            after = declared(services, amqp_url)

    assert after == before
    assert {CREATE, CREATE_DLQ, DISPATCH, DISPATCH_DLQ} <= set(after)
    for name in (CREATE, CREATE_DLQ, DISPATCH, DISPATCH_DLQ):  # still there once both are gone
        await existing(channel, name)


async def test_dispatches_are_published_as_persistent_json_on_the_dispatch_queue(
    amqp_url: str, channel: AbstractChannel
) -> None:
    sent = [Dispatch(uuid.uuid4(), 1), Dispatch(uuid.uuid4(), 3)]
    async with running(amqp_url) as broker:
        await broker.publish(sent)
    queue = await existing(channel, DISPATCH)

    received = [await next_message(queue) for _ in sent]

    assert sorted((json.loads(m.body) for m in received), key=lambda d: d["attempt"]) == [
        {"task_id": str(d.task_id), "attempt": d.attempt} for d in sent
    ]
    assert {m.delivery_mode for m in received} == {aio_pika.DeliveryMode.PERSISTENT}
    assert {m.content_type for m in received} == {"application/json"}
    assert sorted(str(m.message_id) for m in received) == sorted(f"{d.task_id}:{d.attempt}"
                                                                 for d in sent)
    assert await queue.get(fail=False) is None


async def test_publishing_before_the_broker_connected_raises_service_unavailable() -> None:
    never_opened = RabbitMQ("amqp://guest:guest@127.0.0.1:5672/never-used", timeout=2)

    with pytest.raises(ServiceUnavailable, match="broker did not confirm"):
        await never_opened.publish([Dispatch(uuid.uuid4(), 1)])


async def test_publishing_after_the_broker_stopped_raises_service_unavailable(
    amqp_url: str, channel: AbstractChannel
) -> None:
    async with running(amqp_url) as broker:
        pass

    with pytest.raises(ServiceUnavailable, match="broker did not confirm"):
        await broker.publish([Dispatch(uuid.uuid4(), 1)])
    assert await (await existing(channel, DISPATCH)).get(fail=False) is None


async def test_a_publish_to_a_silent_broker_fails_within_the_confirm_deadline(
    amqp_url: str,
) -> None:
    with Proxy.in_front_of(amqp_url) as proxy:
        async with running(proxy.url_for(amqp_url)) as broker:  # its confirms wait 5 s at most
            await broker.publish([Dispatch(uuid.uuid4(), 1)])
            proxy.blackhole()  # no frame in either direction: no confirm, no heartbeat
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable, match="broker did not confirm in time"):
                await broker.publish([Dispatch(uuid.uuid4(), 1)])
            waited = time.monotonic() - started
            proxy.heal(reset_existing=True)

    assert 4.5 < waited < 8  # the heartbeat would have taken 18 s


async def test_a_consumer_holds_at_most_its_prefetch_unsettled(
    amqp_url: str, channel: AbstractChannel
) -> None:
    held: list[Delivery] = []

    async def hold(delivery: Delivery) -> None:
        held.append(delivery)  # never settled while the test looks

    async with running(amqp_url, consumers=[(DISPATCH, 7, hold)]):
        for n in range(20):
            await send(channel, DISPATCH, {"n": n})
        async def seven_held() -> bool:
            return len(held) >= 7

        await eventually(seven_held, "7 deliveries")
        await asyncio.sleep(0.5)  # time for more deliveries, were the limit not applied
        ready = (await existing(channel, DISPATCH)).declaration_result.message_count

    assert len(held) == 7
    assert ready == 13
