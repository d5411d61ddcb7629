"""Tracing, on only when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set.

How one task becomes one trace, and who does what:
- entry points open the span that starts it: the HTTP request (entrypoints/http/tracing.py) or
  the intake message, continuing the producer's `traceparent` header when there is one;
- the use cases see only the Tracer port (application/telemetry.py): CreateTask stores the
  active span's context, an opaque string, in the dispatch, which the outbox row keeps;
- the RabbitMQ adapter publishes a dispatch inside a `publish` span continuing that context, and
  puts the publish span's `traceparent` in the message headers;
- the worker's consumer span continues the header's context, and ProcessTask's claim, work and
  finish are its children; PostgreSQL statements are children of whatever step ran them.

With tracing off the container keeps NO_TRACING: no span is made, no header is read or written
(a dispatch's trace is None and the adapter checks only that), and OpenTelemetry's SDK is never
imported.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import structlog

from adapters.queues import TRACE_HEADER
from application.messaging import Delivery
from application.telemetry import NO_TRACING, Span, Tracer

log = structlog.get_logger(__name__)
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def requested() -> bool:
    return any(os.environ.get(name) for name in ENDPOINTS)


def enable_tracing(container: Any, service: str) -> None:
    """Swap OpenTelemetry into the container when asked for; before anything opens the pool."""
    if not requested():
        return
    from dependency_injector import providers

    from adapters.telemetry.tracing import start

    tracer = start(service)
    container.tracer.override(providers.Object(tracer))
    log.info("tracing_on", service=os.environ.get("OTEL_SERVICE_NAME") or service,
             endpoint=next(os.environ[n] for n in ENDPOINTS if os.environ.get(n)))


@runtime_checkable
class _Exporting(Protocol):
    def shutdown(self) -> None: ...


async def flush_traces(tracer: Tracer) -> None:
    """On the way out, after everything else: export the spans still queued."""
    if isinstance(tracer, _Exporting):
        await asyncio.to_thread(tracer.shutdown)


def carried(headers: Mapping[str, object]) -> str | None:
    """The trace context a message carries (AMQP may hand header strings over as bytes)."""
    value = headers.get(TRACE_HEADER)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) else None


def consuming(tracer: Tracer, queue: str, delivery: Delivery,
              task_id: uuid.UUID | None = None) -> AbstractContextManager[Span]:
    """The span around handling one message, continuing the trace its headers carry."""
    if tracer is NO_TRACING:
        return tracer.span("")
    return tracer.span(f"process {queue}", task_id, parent=carried(delivery.headers),
                       kind="consumer",
                       attributes={"messaging.system": "rabbitmq",
                                   "messaging.operation.type": "process",
                                   "messaging.destination.name": queue,
                                   "messaging.message.id": delivery.message_id or ""})


def trace_ids(on: bool) -> structlog.types.Processor:
    """A structlog processor. A line that names a dispatch's context (`trace=`, opaque) shows
    it as `trace_id`; with tracing on, any other line inside a span gets the span's
    `trace_id` and `span_id`."""
    if not on:
        def carried_only(logger: Any, method: str, event: Any) -> Any:
            event.pop("trace", None)
            return event

        return carried_only
    from opentelemetry.trace import get_current_span

    def with_ids(logger: Any, method: str, event: Any) -> Any:
        stored = event.pop("trace", None)
        if stored:  # 00-<trace id>-<span id>-<flags>
            event["trace_id"] = stored[3:35]
            return event
        context = get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format(context.trace_id, "032x")
            event["span_id"] = format(context.span_id, "016x")
        return event

    return with_ids
