"""AMQP intake on `tasks.create`: validate, create, reply, dead-letter what cannot be a task."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from aio_pika.abc import AbstractIncomingMessage
from faststream.rabbit import RabbitBroker

from adapters.rabbitmq.lane import Handler
from adapters.rabbitmq.topology import CREATE_DLQ, REASON_HEADER
from application.create import CreateTask
from application.retry import retrying
from domain.errors import DomainError
from domain.task import TaskSource
from entrypoints.problems import problem_for
from entrypoints.wire import TaskIn, TaskOut

log = structlog.get_logger(__name__)
_decode = msgspec.json.Decoder(TaskIn).decode
_encode = msgspec.json.Encoder().encode


def intake_handler(broker: RabbitBroker, create: CreateTask) -> Handler:
    """What the lane calls for each `tasks.create` delivery. Replies and dead-letters go out
    through FastStream's `broker`; the message is acked only once its task is committed."""

    async def on_create(msg: AbstractIncomingMessage) -> None:
        key = msg.message_id or None
        with structlog.contextvars.bound_contextvars(message_id=key):
            try:
                request = _decode(msg.body).to_request(TaskSource.AMQP, key)
                created = await retrying(lambda: create(request), "intake_create")
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(msg.nack(requeue=True))
                raise
            except (msgspec.DecodeError, DomainError) as exc:
                problem = problem_for(exc)
                try:
                    await _dead_letter(broker, msg, problem.detail)
                except Exception:
                    log.exception("dead_letter_publish_failed")
                    await msg.reject(requeue=False)
                    return
                await _reply(broker, msg, _encode(problem), "application/problem+json")
                await msg.ack()
                return
            except Exception:
                log.exception("intake_failed")
                await msg.reject(requeue=False)  # dead-lettered by RabbitMQ (x-death header)
                return
            await _reply(broker, msg, _encode(TaskOut.of(created.task)), "application/json")
            await msg.ack()

    return on_create


async def _dead_letter(broker: RabbitBroker, msg: AbstractIncomingMessage, reason: str) -> None:
    headers: dict[str, Any] = dict(msg.headers or {})
    headers[REASON_HEADER] = reason
    log.warning("intake_dead_lettered", reason=reason)
    await broker.publish(
        msg.body,
        queue=CREATE_DLQ,
        headers=headers,
        persist=True,
        message_id=msg.message_id,
        correlation_id=msg.correlation_id,
        content_type=msg.content_type,
        timeout=10,
    )


async def _reply(
    broker: RabbitBroker, msg: AbstractIncomingMessage, body: bytes, content_type: str
) -> None:
    if not msg.reply_to:
        return
    try:
        await broker.publish(
            body,
            routing_key=msg.reply_to,
            correlation_id=msg.correlation_id,
            content_type=content_type,
            timeout=10,
        )
    except Exception as exc:  # noqa: BLE001 - a lost reply must not lose the task
        log.warning("intake_reply_failed", reply_to=msg.reply_to, error=str(exc))
