"""What a consumer is handling right now, so that shutdown can finish it or hand it back."""

from __future__ import annotations

import asyncio

import structlog

from application.messaging import Delivery, DeliveryHandler

log = structlog.get_logger(__name__)


class Inflight:
    """Wraps a consumer's handler. On `drain()` it takes nothing new (a delivery that still
    arrives is left unsettled: the broker hands it out again once this process's channel is
    gone, without a requeue that would count as a failed delivery), lets what is in flight
    finish within `grace` seconds, then cancels the rest: each handler puts its message back,
    the worker's hands its task back."""

    def __init__(self, name: str, grace: float) -> None:
        self.name = name
        self._grace = grace
        self._tasks: set[asyncio.Task[object]] = set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._tasks)

    def track(self, handler: DeliveryHandler) -> DeliveryHandler:
        async def tracked(delivery: Delivery) -> None:
            if self.draining:
                return
            current = asyncio.current_task()
            assert current is not None
            self._tasks.add(current)
            try:
                await handler(delivery)
            finally:
                self._tasks.discard(current)

        return tracked

    async def drain(self) -> None:
        self.draining = True
        pending = set(self._tasks)
        log.info("consumer_draining", consumer=self.name, inflight=len(pending),
                 grace_s=self._grace)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self._grace)
        if late:
            log.warning("consumer_handing_back", consumer=self.name, count=len(late))
            for task in late:
                task.cancel()
            _, stuck = await asyncio.wait(late, timeout=10)
            for task in stuck:  # e.g. waiting for a database that is gone: stop waiting
                task.cancel()
