"""One task is one trace, across real `tasks api` and `tasks worker` processes: the request (or
the intake message), the relay's publish, the worker's claim, work and finish, and the
PostgreSQL statements of each, exported over OTLP/HTTP to a receiver in the test."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.support.amqp import amqp_client
from tests.support.otlp import ReceivedSpan, Receiver, otlp_receiver
from tests.support.processes import Stack, eventually

FINAL = {"completed", "error"}
#: Span kinds in OTLP's numbering.
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
WORKER_STEPS = ["process tasks.dispatch", "task.claim", "task.process", "task.finish"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as found:
        yield found


def traced(stack: Stack, receiver: Receiver) -> None:
    stack.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="100",
                     TASKS_WORKER_HTTP_PORT="0")
    stack.migrate()
    stack.api()
    stack.worker()


async def until_final(stack: Stack, task_id: str) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        async def final() -> bool:
            return (await http.get(f"/tasks/{task_id}")).json()["status"] in FINAL

        await eventually(final, 30, "the task to finish")


def stop_all(stack: Stack) -> None:
    """Gracefully, worker first: each exports what it still holds on the way out."""
    for proc in reversed(stack.procs):
        proc.stop()


def one_trace(receiver: Receiver, task_id: str) -> tuple[str, list[ReceivedSpan]]:
    """The trace of the relay's publish for this task, which must be the only one it has."""
    publishes = [s for s in receiver.spans()
                 if s.name == "publish tasks.dispatch" and s.attributes.get("task.id") == task_id]
    assert len(publishes) == 1, receiver.spans()
    trace_id = publishes[0].trace_id
    return trace_id, receiver.trace(trace_id)


def by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def assert_the_dispatch_and_the_work_are_in_it(spans: list[ReceivedSpan], task_id: str) -> None:
    publish = by_name(spans, "publish tasks.dispatch")
    consume = by_name(spans, "process tasks.dispatch")
    assert (publish.service, publish.kind) == ("tasks-api", PRODUCER)
    assert (consume.service, consume.kind, consume.parent_id) == (
        "tasks-worker", CONSUMER, publish.span_id)
    for step in WORKER_STEPS[1:]:
        span = by_name(spans, step)
        assert (span.service, span.parent_id, span.attributes["task.id"]) == (
            "tasks-worker", consume.span_id, task_id)
    queries = [s for s in spans if s.kind == CLIENT and s.attributes.get("db.system")]
    assert {s.service for s in queries} == {"tasks-api", "tasks-worker"}, spans
    steps = {by_name(spans, n).span_id for n in ("task.claim", "task.finish")}
    assert {s.parent_id for s in queries if s.service == "tasks-worker"} <= steps


async def test_a_task_created_over_http_is_one_trace_from_request_to_finish(
    stack: Stack, receiver: Receiver,
) -> None:
    traced(stack, receiver)
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        created = await http.post("/tasks", json={"title": "traced"})
    assert created.status_code == 201
    task_id = created.json()["id"]
    await until_final(stack, task_id)
    stop_all(stack)

    trace_id, spans = one_trace(receiver, task_id)
    request = by_name(spans, "POST /tasks")
    assert (request.service, request.kind, request.parent_id) == ("tasks-api", SERVER, "")
    assert request.attributes["http.response.status_code"] == 201
    assert by_name(spans, "publish tasks.dispatch").parent_id == request.span_id
    assert_the_dispatch_and_the_work_are_in_it(spans, task_id)
    assert any(s.service == "tasks-api" and s.kind == CLIENT and s.parent_id == request.span_id
               for s in spans), "the request's INSERT is in the trace"
    lines = [json.loads(line) for p in stack.procs for line in p.log().splitlines()
             if line.startswith("{") and task_id in line]
    about = [line for line in lines if line.get("task_id") == task_id]
    assert {line["event"] for line in about} >= {
        "task_created", "task_dispatched", "task_claimed", "task_finished"}
    assert all(line.get("trace_id") == trace_id for line in about), about


async def test_an_intake_message_with_a_traceparent_continues_the_producers_trace(
    stack: Stack, receiver: Receiver, rabbitmq_url: str,
) -> None:
    traced(stack, receiver)
    producer_trace, producer_span = secrets.token_hex(16), secrets.token_hex(8)
    async with amqp_client(rabbitmq_url) as amqp:
        replies = await amqp.reply_queue()
        await amqp.publish(b'{"title": "traced by its producer"}', message_id="traced-1",
                           reply_to=replies.name, correlation_id="c-1",
                           headers={"traceparent": f"00-{producer_trace}-{producer_span}-01"})
        reply = await amqp.get(replies.name, timeout=30)
    task_id = httpx.Response(200, content=reply.body).json()["id"]
    await until_final(stack, task_id)
    stop_all(stack)

    trace_id, spans = one_trace(receiver, task_id)
    assert trace_id == producer_trace
    intake = by_name(spans, "process tasks.create")
    assert (intake.service, intake.kind, intake.parent_id) == (
        "tasks-api", CONSUMER, producer_span)
    assert by_name(spans, "publish tasks.dispatch").parent_id == intake.span_id
    assert_the_dispatch_and_the_work_are_in_it(spans, task_id)
