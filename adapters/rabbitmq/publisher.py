"""Dispatch publisher: persistent messages, each confirmed by RabbitMQ before we return."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
from faststream.rabbit import RabbitBroker

from adapters.rabbitmq.topology import DISPATCH
from application.model import Dispatch
from domain.errors import ServiceUnavailable

_encode = msgspec.json.Encoder().encode


class RabbitDispatchPublisher:
    """Publishes a batch concurrently on a confirming channel, so confirms overlap."""

    def __init__(self, broker: RabbitBroker, timeout: float = 10.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def _one(self, dispatch: Dispatch) -> None:
        await self._broker.publish(
            _encode(dispatch),
            queue=DISPATCH,
            persist=True,
            content_type="application/json",
            message_id=f"{dispatch.task_id}:{dispatch.attempt}",
            timeout=self._timeout,
        )

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        try:
            await asyncio.gather(*(self._one(d) for d in dispatches))
        except Exception as exc:
            raise ServiceUnavailable(f"broker did not confirm: {type(exc).__name__}") from exc
