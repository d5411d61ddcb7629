"""Acks gathered per channel: one frame with multiple=True for deliveries acked together, never
one that reaches a delivery still out (the ack frames are counted by a recording sender)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.rabbitmq import acks as acks_module
from adapters.rabbitmq.acks import Acks, ChannelAcks


class Frames:
    """What would go to RabbitMQ: (delivery tag, multiple) per basic.ack frame."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[int, bool]] = []
        self.fail = fail

    async def __call__(self, message: object, multiple: bool) -> None:
        assert isinstance(message, int)  # the tests pass the tag as the message
        if self.fail:
            raise ConnectionError("channel closed")
        self.sent.append((message, multiple))


async def ack_together(channel: ChannelAcks, *tags: int) -> None:
    """Acks asked for in one turn of the loop, as handlers woken by one commit ask for them."""
    await asyncio.gather(*(channel.ack(tag, tag) for tag in tags))


async def test_deliveries_acked_in_the_same_turn_go_as_one_multiple_ack() -> None:
    frames = Frames()
    channel = ChannelAcks(frames)

    await ack_together(channel, 3, 1, 2, 5, 4)

    assert frames.sent == [(5, True)]
    assert channel.through == 5


async def test_an_older_delivery_still_out_keeps_the_others_single() -> None:
    frames = Frames()
    channel = ChannelAcks(frames)

    await ack_together(channel, 2, 3)  # 1 is still being worked on

    assert frames.sent == [(2, False), (3, False)]
    assert channel.through == 0

    await ack_together(channel, 1)

    assert frames.sent[2:] == [(1, False)]
    assert channel.through == 3


async def test_a_multiple_ack_stops_before_the_first_delivery_still_out() -> None:
    frames = Frames()
    channel = ChannelAcks(frames)

    await ack_together(channel, 1, 2, 4, 5)  # 3 is still out

    assert frames.sent == [(2, True), (4, False), (5, False)]
    assert channel.through == 2


async def test_a_requeued_delivery_does_not_hold_the_others_back() -> None:
    frames = Frames()
    channel = ChannelAcks(frames)
    channel.settled(1)  # put back with a nack, already written

    await ack_together(channel, 2, 3, 4)

    assert frames.sent == [(4, True)]
    assert channel.through == 4


async def test_acks_of_different_turns_go_in_frames_of_their_own() -> None:
    frames = Frames()
    channel = ChannelAcks(frames)

    await ack_together(channel, 1, 2)
    await ack_together(channel, 3, 4)

    assert frames.sent == [(2, True), (4, True)]


async def test_a_frame_that_cannot_be_sent_fails_every_ack_it_carried() -> None:
    channel = ChannelAcks(Frames(fail=True))

    results = await asyncio.gather(*(channel.ack(tag, tag) for tag in (1, 2, 3)),
                                   return_exceptions=True)

    assert [type(r) for r in results] == [ConnectionError] * 3


async def test_a_waiter_cancelled_meanwhile_does_not_stop_its_ack() -> None:
    frames = Frames()
    channel = ChannelAcks(frames)

    waiter = asyncio.create_task(channel.ack(1, 1))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0.01)

    assert frames.sent == [(1, False)]


async def test_too_many_settled_out_of_order_turns_the_channel_to_single_acks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acks_module, "MEMORY", 3)
    frames = Frames()
    channel = ChannelAcks(frames)

    await ack_together(channel, 2, 3, 4, 5)  # 1 held by a stuck handler
    await ack_together(channel, 1)
    await ack_together(channel, 6, 7)

    assert (7, True) not in frames.sent
    assert frames.sent[-2:] == [(6, False), (7, False)]


class Channel:
    """Stands for an aiormq channel: the key of its acks."""


async def test_each_channel_has_its_own_tags() -> None:
    frames = Frames()
    acks = Acks(frames)
    first, second = Channel(), Channel()

    assert acks.of(first) is acks.of(first)
    assert acks.of(first) is not acks.of(second)
