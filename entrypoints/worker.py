"""The worker's consumer: decode a dispatch, run ProcessTask, ack only after the final commit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

import msgspec
import structlog

from adapters.queues import DISPATCH
from application.messaging import Delivery, DeliveryHandler
from application.model import Dispatch
from application.process import ProcessTask
from application.telemetry import NO_TRACING, Tracer
from entrypoints.tracing import consuming

log = structlog.get_logger(__name__)
_decode = msgspec.json.Decoder(Dispatch).decode


def dispatch_handler(process: ProcessTask, tracer: Tracer = NO_TRACING) -> DeliveryHandler:
    """What the broker calls for each dispatch (each in its own asyncio task), inside a span
    that continues the trace the message carries."""

    async def on_dispatch(delivery: Delivery) -> None:
        try:
            dispatch = _decode(delivery.body)
        except msgspec.DecodeError as exc:
            log.error("dispatch_rejected", reason=str(exc), message_id=delivery.message_id)
            await _settle(delivery.dead_letter(f"not a dispatch: {exc}"))
            return
        task_id = str(dispatch.task_id)
        try:
            with structlog.contextvars.bound_contextvars(task_id=task_id), \
                    consuming(tracer, DISPATCH, delivery, dispatch.task_id) as span:
                outcome = await process(dispatch.task_id)
                span.set("task.outcome", outcome.value)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(delivery.requeue())
            raise
        except Exception:
            # requeued: the queue's delivery limit dead-letters a message that keeps failing
            log.exception("dispatch_failed", task_id=task_id)
            await _settle(delivery.requeue())
            return
        log.debug("dispatch_done", task_id=task_id, outcome=outcome)
        await _settle(delivery.ack())

    return on_dispatch


async def _settle(action: Awaitable[None]) -> None:
    """Settling on a channel that died is harmless: the message is redelivered and skipped."""
    try:
        await action
    except Exception as exc:  # noqa: BLE001
        log.warning("settle_failed", error=f"{type(exc).__name__}: {exc}")
