"""A delivery reads the AMQP properties as the message carried them, not as FastStream fills
them in (it makes up a message_id and a correlation_id where there are none)."""

from __future__ import annotations

from typing import Any

from aio_pika import IncomingMessage
from aiormq.abc import DeliveredMessage
from faststream.rabbit.parser import AioPikaParser
from pamqp import commands as spec
from pamqp.header import ContentHeader

from adapters.queues import CREATE
from adapters.rabbitmq.acks import ChannelAcks
from adapters.rabbitmq.delivery import RabbitDelivery


async def arrived(**properties: Any) -> RabbitDelivery:
    """A message as aiormq hands it over, parsed by FastStream, wrapped by the adapter."""
    delivered = DeliveredMessage(
        delivery=spec.Basic.Deliver(consumer_tag="ctag", delivery_tag=7, routing_key=CREATE),
        header=ContentHeader(properties=spec.Basic.Properties(**properties)),
        body=b'{"title": "t"}', channel=None)  # type: ignore[arg-type]
    message = await AioPikaParser().parse_message(IncomingMessage(delivered))

    async def never(*_: object, **__: object) -> None:
        raise AssertionError("nothing is sent")

    return RabbitDelivery(CREATE, message, ChannelAcks(never), never)  # type: ignore[arg-type]


async def test_a_message_without_ids_has_none() -> None:
    delivery = await arrived()

    assert (delivery.message_id, delivery.correlation_id, delivery.reply_to) == (None, None, None)
    assert delivery.headers == {}


async def test_a_message_with_ids_keeps_them() -> None:
    delivery = await arrived(message_id="m-1", correlation_id="c-1", reply_to="answers",
                             headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})

    assert (delivery.message_id, delivery.correlation_id, delivery.reply_to) == (
        "m-1", "c-1", "answers")
    assert set(delivery.headers) == {"traceparent"}
    assert delivery.body == b'{"title": "t"}'
