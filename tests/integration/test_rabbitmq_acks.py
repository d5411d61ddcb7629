"""Acks on a real broker: deliveries acked together leave as one basic.ack with multiple=True,
and no ack, together or not, ever takes a delivery whose work is not finished."""

from __future__ import annotations

import asyncio
import json

import aiormq
import pytest
from aio_pika.abc import AbstractChannel

from adapters.queues import DISPATCH
from application.messaging import Delivery, DeliveryHandler

from .amqp import existing, next_message, running, send
from .waiting import eventually


@pytest.fixture
def ack_frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """Every basic.ack this process writes, as (delivery tag, multiple): the client's own
    method, recorded on its way to the real broker."""
    frames: list[tuple[int, bool]] = []
    original = aiormq.Channel.basic_ack

    async def recorded(self: aiormq.Channel, delivery_tag: int, multiple: bool = False,
                       wait: bool = True) -> None:
        frames.append((delivery_tag, multiple))
        await original(self, delivery_tag, multiple=multiple, wait=wait)

    monkeypatch.setattr(aiormq.Channel, "basic_ack", recorded)
    return frames


async def holding(amqp_url: str, channel: AbstractChannel, count: int,
                  held: dict[int, Delivery]) -> None:
    """Publishes `count` dispatches numbered 0… and waits until the consumer holds them all."""
    for n in range(count):
        await send(channel, DISPATCH, {"n": n})

    async def all_held() -> bool:
        return len(held) == count

    await eventually(all_held, f"{count} deliveries held")


def holder(held: dict[int, Delivery]) -> tuple[str, int, DeliveryHandler]:
    async def hold(delivery: Delivery) -> None:
        held[json.loads(delivery.body)["n"]] = delivery  # settled by the test

    return DISPATCH, 50, hold


async def come_back(channel: AbstractChannel) -> list[int]:
    """Once the consumer's channel is closed: the numbers of the deliveries RabbitMQ put back
    (a quorum queue hands them out before a marker published afterwards)."""
    await send(channel, DISPATCH, {"n": -1})
    queue = await existing(channel, DISPATCH)
    back = []
    while (n := json.loads((await next_message(queue)).body)["n"]) != -1:
        back.append(n)
    return back


async def test_deliveries_acked_together_go_as_one_frame_and_leave_the_queue(
    amqp_url: str, channel: AbstractChannel, ack_frames: list[tuple[int, bool]],
) -> None:
    held: dict[int, Delivery] = {}
    async with running(amqp_url, consumers=[holder(held)]):
        await holding(amqp_url, channel, 8, held)
        await asyncio.gather(*(d.ack() for d in held.values()))
        frames = list(ack_frames)

    assert frames == [(8, True)]
    assert await come_back(channel) == []


async def test_acks_around_an_unfinished_delivery_never_take_it(
    amqp_url: str, channel: AbstractChannel, ack_frames: list[tuple[int, bool]],
) -> None:
    held: dict[int, Delivery] = {}
    async with running(amqp_url, consumers=[holder(held)]):
        await holding(amqp_url, channel, 8, held)
        # 2 is still being worked on; the rest finish out of order, in three turns
        await asyncio.gather(*(held[n].ack() for n in (5, 0, 1)))
        await asyncio.gather(*(held[n].ack() for n in (7, 3, 4)))
        await held[6].ack()
        frames = list(ack_frames)

    # tags are 1 + n: 0 and 1 together; every other ack alone, since 2 is still out
    assert frames == [(2, True), (6, False), (4, False), (5, False), (8, False), (7, False)]
    assert await come_back(channel) == [2]


async def test_a_requeued_delivery_lets_the_next_ones_go_together(
    amqp_url: str, channel: AbstractChannel, ack_frames: list[tuple[int, bool]],
) -> None:
    held: dict[int, Delivery] = {}
    async with running(amqp_url, consumers=[holder(held)]):
        await holding(amqp_url, channel, 4, held)
        first = held[0]
        await first.requeue()

        async def back_again() -> bool:
            return held[0] is not first

        await eventually(back_again, "the requeued delivery handed out again (tag 5)")
        await asyncio.gather(*(held[n].ack() for n in (1, 2, 3)))
        await held[0].ack()
        frames = list(ack_frames)

    assert frames == [(4, True), (5, False)]
    assert await come_back(channel) == []

