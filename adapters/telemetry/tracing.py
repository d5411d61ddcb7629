"""The Tracer port on OpenTelemetry: spans exported over OTLP/HTTP in batches, and every
PostgreSQL statement as a child span of the step that ran it.

Contexts cross process boundaries as W3C `traceparent` strings (the port's opaque string), in
the outbox row and in the message headers. Statements that run outside any span of a task (the
relay's poll, lease renewal, the event feed, readiness probes) would each become a trace of one
span: the sampler drops client spans that have no parent, and keeps every trace that a request,
a message or a task step starts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace import Span as OtelSpan
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import SpanContext, TraceState
from opentelemetry.util.types import Attributes

from adapters.queues import TRACE_HEADER
from application.telemetry import Attribute, Span
from application.telemetry import SpanKind as PortKind

KINDS: dict[PortKind, SpanKind] = {
    "internal": SpanKind.INTERNAL, "server": SpanKind.SERVER, "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER, "consumer": SpanKind.CONSUMER,
}
_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent(context: SpanContext) -> str | None:
    """The W3C `traceparent` of a span (version 00); None for an invalid (no-op) span."""
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


class _Span:
    __slots__ = ("_span",)

    def __init__(self, span: OtelSpan) -> None:
        self._span = span

    @property
    def context(self) -> str | None:
        return traceparent(self._span.get_span_context())

    def set(self, key: str, value: Attribute) -> None:
        self._span.set_attribute(key, value)


class OtelTracer:
    """The Tracer port. `shutdown` exports what is still queued; call it once, on the way out."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("tasks")

    def current(self) -> str | None:
        return traceparent(get_current_span().get_span_context())

    @contextmanager
    def span(self, name: str, task_id: uuid.UUID | None = None, *, parent: str | None = None,
             kind: PortKind = "internal",
             attributes: Mapping[str, Attribute] | None = None) -> Iterator[Span]:
        context = _PROPAGATOR.extract({TRACE_HEADER: parent}) if parent else None
        attrs: dict[str, Attribute] = dict(attributes or {})
        if task_id is not None:
            attrs["task.id"] = str(task_id)
        with self._tracer.start_as_current_span(name, context=context, kind=KINDS[kind],
                                                attributes=attrs) as span:
            yield _Span(span)

    def shutdown(self) -> None:
        self.provider.shutdown()


class NoOrphanQueries(Sampler):
    """For spans without a parent: a client span (a database call) is dropped, the rest kept."""

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        chosen = ALWAYS_OFF if kind is SpanKind.CLIENT else ALWAYS_ON
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links,
                                    trace_state)

    def get_description(self) -> str:
        return "NoOrphanQueries"


def start(service: str) -> OtelTracer:
    """Once per process, before the connection pool opens (psycopg's instrumentation wraps the
    connect calls, so only connections opened afterwards are traced). The exporter reads the
    standard OTEL_EXPORTER_OTLP_* variables; OTEL_SERVICE_NAME, when set, wins over `service`,
    and OTEL_TRACES_SAMPLER over the sampler above."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(NoOrphanQueries())
    provider = TracerProvider(resource=Resource.create(named), sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    return OtelTracer(provider)
