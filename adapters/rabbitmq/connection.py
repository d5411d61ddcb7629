"""FastStream broker factory, the health probe, and one connect loop for the broker and the lane
that waits for RabbitMQ instead of crashing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from faststream.rabbit import RabbitBroker

from adapters.rabbitmq import topology
from adapters.rabbitmq.lane import Handler, Lane
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

#: A lane consumer: queue name, prefetch, and the callback for each delivery.
Consumer = tuple[str, int, Handler]


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
    lane: Lane,
    stop: asyncio.Event | None = None,
    consumers: Sequence[Consumer] = (),
) -> bool:
    """Connect, declare the topology, open the lane and start its `consumers`, retrying all of
    it with capped backoff.

    Returns False if `stop` was set before RabbitMQ could be reached.
    """
    delay, attempt = 0.5, 1
    while True:
        try:
            await broker.start()
            await topology.declare(broker)
            await lane.open()
            for queue, prefetch, handler in consumers:
                await lane.consume(queue, prefetch, handler)
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


class RabbitProbe:
    """Both connections up: FastStream's (topology, intake replies and dead-letters) and the
    lane's (consumers, dispatch publishing)."""

    name = "broker"

    def __init__(self, broker: RabbitBroker, lane: Lane) -> None:
        self._broker = broker
        self._lane = lane

    async def check(self) -> None:
        if not await self._broker.ping(timeout=1.0):
            raise ServiceUnavailable("broker unreachable")
        await self._lane.check()
