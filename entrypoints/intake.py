"""AMQP intake on `tasks.create`: validate, create, reply, dead-letter what cannot be a task."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage

from adapters.rabbitmq.connection import manual_consumer
from adapters.rabbitmq.topology import CREATE_DLQ, CREATE_QUEUE, REASON_HEADER
from application.create import CreateTask
from application.retry import retrying
from domain.errors import DomainError
from domain.task import TaskSource
from entrypoints.problems import problem_for
from entrypoints.wire import TaskIn, TaskOut

log = structlog.get_logger(__name__)
_decode = msgspec.json.Decoder(TaskIn).decode
_encode = msgspec.json.Encoder().encode


def subscribe_intake(broker: RabbitBroker, create: CreateTask, prefetch: int) -> None:
    @manual_consumer(broker, CREATE_QUEUE, prefetch)
    async def on_create(msg: RabbitMessage) -> None:
        raw = msg.raw_message
        key = raw.message_id or None
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


async def _dead_letter(broker: RabbitBroker, msg: RabbitMessage, reason: str) -> None:
    raw = msg.raw_message
    headers: dict[str, Any] = dict(raw.headers or {})
    headers[REASON_HEADER] = reason
    log.warning("intake_dead_lettered", reason=reason)
    await broker.publish(
        raw.body,
        queue=CREATE_DLQ,
        headers=headers,
        persist=True,
        message_id=raw.message_id,
        correlation_id=raw.correlation_id,
        content_type=raw.content_type,
        timeout=10,
    )


async def _reply(broker: RabbitBroker, msg: RabbitMessage, body: bytes, content_type: str) -> None:
    raw = msg.raw_message
    if not raw.reply_to:
        return
    try:
        await broker.publish(
            body,
            routing_key=raw.reply_to,
            correlation_id=raw.correlation_id,
            content_type=content_type,
            timeout=10,
        )
    except Exception as exc:  # noqa: BLE001 - a lost reply must not lose the task
        log.warning("intake_reply_failed", reply_to=raw.reply_to, error=str(exc))
