"""Acknowledgements of one channel's deliveries, gathered for a turn of the event loop and sent
as one `basic.ack` with multiple=True where that acknowledges nothing else."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

#: Out-of-order settlements remembered while an older delivery is still out; past this many,
#: the channel's acks go singly for the rest of its life (one stuck handler costs no memory).
MEMORY = 10_000

#: Sends one ack: (the delivery's message, multiple) -> None.
SendAck = Callable[[Any, bool], Awaitable[None]]


class ChannelAcks:
    """The deliveries of one AMQP channel carry delivery tags 1, 2, 3, … in the order they
    arrive. `through` is the highest tag such that every delivery up to it is settled (acked,
    requeued or rejected). Acks asked for in one turn of the loop are sent on the next: those
    that extend `through` without a gap go as one ack with multiple=True on the highest of them
    (RabbitMQ then acks every delivery up to it that is still out, which by then are exactly
    these); the others go one by one. A delivery nobody settles (a draining consumer leaves its
    late deliveries alone) holds `through` back, so a multiple ack never reaches it."""

    def __init__(self, send: SendAck) -> None:
        self._send = send
        self.through = 0
        self._settled: set[int] = set()  # settled tags above `through`
        self._pending: dict[int, tuple[Any, asyncio.Future[None]]] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._singly = False

    async def ack(self, tag: int, message: Any) -> None:
        """Returns once the ack that covers `tag` has been written (or raises why it failed)."""
        done = asyncio.get_running_loop().create_future()
        done.add_done_callback(_seen)  # a waiter cancelled meanwhile leaves no warning behind
        self._pending[tag] = (message, done)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(done)

    def settled(self, tag: int) -> None:
        """`tag` was requeued or rejected (its frame is written): a multiple ack may pass it."""
        self._settled.add(tag)
        self._advance()

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the turn in which the first ack was asked for ends first
        pending, self._pending, self._flushing = self._pending, {}, None
        together: list[int] = []
        reach = self.through
        while not self._singly:
            if reach + 1 in pending:
                together.append(reach + 1)
            elif reach + 1 not in self._settled:
                break
            reach += 1
        if len(together) < 2:
            together = []
        alone = sorted(pending.keys() - set(together))
        try:
            if together:
                await self._sent([pending[tag] for tag in together], multiple=True)
            for tag in alone:
                await self._sent([pending[tag]], multiple=False)
        finally:
            for _, done in pending.values():  # the flush itself was cancelled
                if not done.done():
                    done.set_exception(ConnectionError("the ack was not sent"))
            self._settled.update(pending)
            self._advance()

    async def _sent(self, acks: list[tuple[Any, asyncio.Future[None]]], *,
                    multiple: bool) -> None:
        """One frame for `acks` (on the last one's message); each waiter learns how it went."""
        try:
            await self._send(acks[-1][0], multiple)
        except Exception as exc:  # noqa: BLE001 - handed to the waiters
            for _, done in acks:
                done.set_exception(exc)
            return
        for _, done in acks:
            done.set_result(None)

    def _advance(self) -> None:
        while self.through + 1 in self._settled:
            self.through += 1
            self._settled.discard(self.through)
        if len(self._settled) > MEMORY:
            self._singly = True
            self._settled.clear()


def _seen(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


class Acks:
    """The ChannelAcks of every channel deliveries come from; a channel's entry goes with it."""

    def __init__(self, send: SendAck) -> None:
        self._send = send
        self._channels: weakref.WeakKeyDictionary[object, ChannelAcks] = (
            weakref.WeakKeyDictionary())

    def of(self, channel: object) -> ChannelAcks:
        acks = self._channels.get(channel)
        if acks is None:
            acks = self._channels[channel] = ChannelAcks(self._send)
        return acks
