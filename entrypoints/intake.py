"""AMQP intake on `tasks.create`: validate, create, reply, dead-letter what cannot be a task."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog

from adapters.queues import CREATE
from application.backoff import retrying
from application.create import CreateTask
from application.messaging import Delivery, DeliveryHandler
from application.telemetry import NO_TRACING, Tracer
from domain.errors import DomainError
from domain.status import TaskSource
from entrypoints.problems import problem_for
from entrypoints.tracing import consuming
from entrypoints.wire import TaskIn, TaskOut

log = structlog.get_logger(__name__)
_decode = msgspec.json.Decoder(TaskIn).decode
_encode = msgspec.json.Encoder().encode
#: On a reply to a message whose `message_id` had already made a task (as HTTP's header).
REPLAYED_HEADER = "idempotent-replayed"


def intake_handler(create: CreateTask, tracer: Tracer = NO_TRACING) -> DeliveryHandler:
    """What the broker calls for each `tasks.create` message. It is acknowledged only once its
    task is committed; one that cannot become a task is dead-lettered with the reason. Each is
    handled in a span that continues the producer's `traceparent` header when it sends one."""

    async def on_create(delivery: Delivery) -> None:
        key = delivery.message_id or None
        with structlog.contextvars.bound_contextvars(message_id=key), \
                consuming(tracer, CREATE, delivery):
            try:
                request = _decode(delivery.body).to_request(TaskSource.AMQP, key)
                created = await retrying(lambda: create(request), "intake_create")
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(delivery.requeue())
                raise
            except (msgspec.DecodeError, DomainError) as exc:
                problem = problem_for(exc)
                log.warning("intake_dead_lettered", reason=problem.detail)
                await delivery.dead_letter(problem.detail)
                await delivery.reply(_encode(problem), "application/problem+json")
                return
            except Exception as exc:
                log.exception("intake_failed")
                await delivery.dead_letter(f"internal error: {type(exc).__name__}")
                return
            headers = {REPLAYED_HEADER: "true"} if created.replayed else None
            await delivery.reply(_encode(TaskOut.of(created.task)), "application/json", headers)
            await delivery.ack()

    return on_create
