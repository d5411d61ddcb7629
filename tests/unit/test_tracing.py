"""Tracing on OpenTelemetry's SDK, exported to memory: spans, contexts, the HTTP server span,
the log lines; and with tracing off, nothing at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind

from adapters.telemetry.tracing import NoOrphanQueries, OtelTracer
from application.telemetry import NO_TRACING
from entrypoints.container import build_container, init_resources, use_memory
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from entrypoints.tracing import consuming, trace_ids

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[tuple[OtelTracer, InMemorySpanExporter]]:
    provider = TracerProvider(sampler=ParentBased(NoOrphanQueries()))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield OtelTracer(provider), exporter
    provider.shutdown()


def test_a_span_continues_the_context_it_is_given_and_names_its_task(
    exported: tuple[OtelTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    task_id = uuid.uuid4()
    with tracer.span("process tasks.dispatch", task_id, parent=PARENT, kind="consumer") as span:
        assert tracer.current() == span.context
        assert span.context is not None
        assert span.context.startswith("00-0af7651916cd43dd8448eb211c80319c-")
        with tracer.span("task.claim", task_id):
            pass
    claim, consumer = exporter.get_finished_spans()
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None and consumer.parent.span_id == 0xb7ad6b7169203331
    assert claim.parent is not None and claim.parent.span_id == consumer.context.span_id
    assert claim.attributes is not None and claim.attributes["task.id"] == str(task_id)
    assert tracer.current() is None


def test_database_calls_outside_any_span_are_not_traced_but_inside_one_they_are(
    exported: tuple[OtelTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    with tracer.span("SELECT", kind="client"):
        pass
    with tracer.span("task.finish"), tracer.span("UPDATE", kind="client"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["UPDATE", "task.finish"]


async def test_a_request_is_a_server_span_whose_context_the_created_task_carries(
    exported: tuple[OtelTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    container = build_container(Settings())
    use_memory(container)
    container.tracer.override(providers.Object(tracer))
    await init_resources(container)
    async with AsyncTestClient(create_app(container)) as client:
        created = await client.post("/tasks", json={"title": "t"}, headers={"traceparent": PARENT})
        assert created.status_code == 201
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
    [request] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert request.name == "POST /tasks"
    assert request.parent is not None and request.parent.span_id == 0xb7ad6b7169203331
    assert request.attributes is not None
    assert (request.attributes["http.route"], request.attributes["http.response.status_code"]) == (
        "/tasks", 201)
    assert await container.relay()() == 1  # what the create sent, published
    [dispatch] = container.broker().published
    assert dispatch.trace == f"00-{request.context.trace_id:032x}-{request.context.span_id:016x}-01"


def test_log_lines_in_a_span_carry_its_trace_id_and_a_stored_context_shows_as_its_id(
    exported: tuple[OtelTracer, InMemorySpanExporter],
) -> None:
    tracer, _ = exported
    add = trace_ids(on=True)
    with tracer.span("task.claim") as span:
        assert span.context is not None
        line = add(None, "info", {"event": "task_claimed"})
        assert line["trace_id"] == span.context[3:35]
        assert line["span_id"] == span.context[36:52]
    assert add(None, "info", {"event": "task_dispatched", "trace": PARENT}) == {
        "event": "task_dispatched", "trace_id": "0af7651916cd43dd8448eb211c80319c"}
    assert add(None, "info", {"event": "outside"}) == {"event": "outside"}


def test_with_tracing_off_log_lines_get_nothing_and_lose_the_empty_trace_key() -> None:
    assert trace_ids(on=False)(None, "info", {"event": "task_dispatched", "trace": None}) == {
        "event": "task_dispatched"}


class UnreadableDelivery:
    message_id = "m-1"

    @property
    def headers(self) -> Any:
        raise AssertionError("tracing is off: no header is read")


def test_with_tracing_off_a_consumed_message_is_not_looked_at() -> None:
    with consuming(NO_TRACING, "tasks.create", UnreadableDelivery()) as span:  # type: ignore[arg-type]
        assert span.context is None
    assert NO_TRACING.current() is None


async def test_in_memory_a_traced_dispatch_goes_with_a_header_and_an_unchanged_body() -> None:
    from adapters.memory import InMemoryBroker
    from application.model import Dispatch

    broker = InMemoryBroker()
    task_id = uuid.uuid4()
    await broker.publish([Dispatch(task_id, 1, PARENT), Dispatch(task_id, 2)])
    traced, plain = broker.queue("tasks.dispatch").get_nowait(), broker.queue(
        "tasks.dispatch").get_nowait()
    assert traced.headers == {"traceparent": PARENT}
    assert plain.headers == {}
    assert traced.body == f'{{"task_id":"{task_id}","attempt":1}}'.encode()
