"""Broker factory and a connect loop that waits for RabbitMQ instead of crashing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage

from adapters.rabbitmq import topology
from adapters.rabbitmq.lane import DispatchLane
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)


def make_broker(url: str, graceful_timeout: float = 30.0) -> RabbitBroker:
    return RabbitBroker(
        url,
        reconnect_interval=1.0,
        graceful_timeout=graceful_timeout,
        logger=None,  # we log through structlog ourselves
        app_id="tasks",
    )


async def start_with_retry(
    broker: RabbitBroker,
    lane: DispatchLane,
    stop: asyncio.Event | None = None,
    then: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Connect, declare the topology, start subscribers, open the dispatch lane and run `then`
    (the worker's consumer), retrying all of it with capped backoff.

    Returns False if `stop` was set before RabbitMQ could be reached.
    """
    delay, attempt = 0.5, 1
    while True:
        try:
            await broker.connect()
            # subscribers first: each declares its queue on its own channel, which carries
            # its prefetch limit; declared earlier, the queue would be bound to the default
            # channel and consumed with no prefetch limit at all
            await broker.start()
            await topology.declare(broker)
            await lane.open()
            if then is not None:
                await then()
        except (TimeoutError, OSError, ConnectionError, Exception) as exc:  # noqa: BLE001
            log.warning("broker_unavailable", attempt=attempt, retry_in=delay,
                        error=f"{type(exc).__name__}: {exc}")
            await _reset(broker)
            await lane.close()
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return False
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(delay)
            delay, attempt = min(delay * 2, 10.0), attempt + 1
            continue
        log.info("broker_connected", attempt=attempt)
        return True


async def _reset(broker: RabbitBroker) -> None:
    with contextlib.suppress(Exception):  # nothing to close after a failed connect
        await broker.stop()


async def raw_body(message: StreamMessage[Any]) -> bytes:
    """FastStream decoder that leaves the body alone: we validate it ourselves, so that a body
    that is not JSON reaches our handler (and the dead-letter queue) instead of failing earlier."""
    return message.body


def manual_consumer(
    broker: RabbitBroker, queue: RabbitQueue, prefetch: int
) -> Callable[[Callable[[RabbitMessage], Awaitable[None]]], object]:
    """How every consumer of ours subscribes: its own channel limited to `prefetch` unacked
    messages, acknowledgement left to the handler (after the commit), the raw body."""
    return broker.subscriber(
        queue,
        channel=Channel(prefetch_count=prefetch),
        ack_policy=AckPolicy.MANUAL,
        no_reply=True,
        decoder=raw_body,
        title=queue.name,
    )


class RabbitProbe:
    """Both connections up: FastStream's (intake, topology) and the dispatch lane's."""

    name = "broker"

    def __init__(self, broker: RabbitBroker, lane: DispatchLane) -> None:
        self._broker = broker
        self._lane = lane

    async def check(self) -> None:
        if not await self._broker.ping(timeout=1.0):
            raise ServiceUnavailable("broker unreachable")
        await self._lane.check()
