"""A message taken from RabbitMQ, as the rest of the service sees it (application's Delivery)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from faststream.rabbit.message import RabbitMessage

from adapters.queues import DEAD_LETTERED_AT, DEAD_LETTERS, REASON_HEADER
from adapters.rabbitmq.acks import ChannelAcks

log = structlog.get_logger(__name__)

#: Publishes `body` to a queue and returns once RabbitMQ confirmed it: (queue, body, **properties).
Send = Callable[..., Awaitable[None]]


class RabbitDelivery:
    """Wraps FastStream's RabbitMessage so that no library type leaves the adapter. The AMQP
    properties are read from the message as it came: FastStream makes up a `message_id` and a
    `correlation_id` for a message without them, and the intake takes the first as its key."""

    def __init__(self, queue: str, message: RabbitMessage, acks: ChannelAcks,
                 send: Send) -> None:
        raw = message.raw_message
        self._queue = queue
        self._message = message
        self._acks = acks
        self._send = send
        self._tag: int = raw.delivery_tag or 0
        self.body: bytes = raw.body
        self.message_id: str | None = raw.message_id
        self.reply_to: str | None = raw.reply_to
        self.correlation_id: str | None = raw.correlation_id
        self.headers: Mapping[str, object] = dict(raw.headers or {})
        self.settled = False

    async def ack(self) -> None:
        """Sent with the acks of this channel that are ready in the same turn of the loop."""
        self.settled = True
        await self._acks.ack(self._tag, self._message)

    async def requeue(self) -> None:
        self.settled = True
        await self._message.nack(requeue=True)
        self._acks.settled(self._tag)

    async def dead_letter(self, reason: str) -> None:
        """A copy with the reason goes to the dead-letter queue first; only once RabbitMQ has
        confirmed it is the original acknowledged (a crash in between leaves both: the copy
        and the redelivered original, never neither)."""
        properties: dict[str, Any] = {
            "headers": {**self.headers, REASON_HEADER: reason,
                        DEAD_LETTERED_AT: datetime.now(UTC).isoformat()},
            "message_id": self.message_id, "correlation_id": self.correlation_id,
            "content_type": self._message.content_type, "persistent": True,
        }
        await self._send(DEAD_LETTERS[self._queue], self.body, **properties)
        await self.ack()

    async def reply(self, body: bytes, content_type: str,
                    headers: Mapping[str, str] | None = None) -> None:
        if not self.reply_to:
            return
        try:
            await self._send(self.reply_to, body, correlation_id=self.correlation_id,
                             content_type=content_type, headers=dict(headers or {}))
        except Exception as exc:  # noqa: BLE001 - a lost reply must not lose the task
            log.warning("reply_failed", reply_to=self.reply_to, error=str(exc))
