"""The use cases report what happens to a task as metrics and spans, through the ports only."""

from __future__ import annotations

import asyncio

import pytest

from application.create import CreateTask
from application.leases import RecoverExpiredLeases
from application.model import NewTaskRequest
from application.operator import CancelTask, RetryTask
from application.process import ProcessTask
from application.telemetry import NO_TRACING
from domain.status import TaskSource, TaskStatus
from tests.unit.fakes import BlockingProcessor, FixedProcessor
from tests.unit.fakes_telemetry import RecordedMetrics, RecordedTracer
from tests.unit.world import LEASE, World

S = TaskStatus


def create(world: World, metrics: RecordedMetrics,
           tracer: RecordedTracer | None = None) -> CreateTask:
    return CreateTask(world.steps, world.clock, world.ids,
                      world.signal, metrics=metrics, tracer=tracer or NO_TRACING)


def process(world: World, metrics: RecordedMetrics, processor: object = None,
            tracer: RecordedTracer | None = None) -> ProcessTask:
    return ProcessTask(world.steps,
                       processor or FixedProcessor(None), world.clock, "w1",  # type: ignore[arg-type]
                       LEASE, world.stops, metrics=metrics, tracer=tracer or NO_TRACING)


async def test_a_created_task_is_counted_once_by_source_and_a_replay_is_not() -> None:
    world, metrics = World(), RecordedMetrics()
    request = NewTaskRequest(title="t", source=TaskSource.AMQP, idempotency_key="k")
    await create(world, metrics)(request)
    await create(world, metrics)(request)
    await create(world, metrics)(NewTaskRequest(title="u"))
    assert metrics.named("created") == [(TaskSource.AMQP,), (TaskSource.API,)]


async def test_a_claim_reports_the_wait_and_a_finish_the_processing_time() -> None:
    world, metrics = World(), RecordedMetrics()
    task = (await create(world, metrics)(NewTaskRequest(title="t"))).task
    world.clock.advance(7)
    processor = BlockingProcessor()
    job = asyncio.create_task(process(world, metrics, processor)(task.id))
    await processor.started.wait()
    assert metrics.named("claimed") == [(7.0,)]
    world.clock.advance(3)
    processor.release.set()
    await job
    assert metrics.named("finished") == [(S.COMPLETED, 3.0)]


async def test_a_failed_task_is_counted_as_finished_in_error() -> None:
    world, metrics = World(), RecordedMetrics()
    task = await world.new_task()
    await process(world, metrics, FixedProcessor("no paper"))(task.id)
    assert metrics.named("finished") == [(S.ERROR, 0.0)]


async def test_a_duplicate_dispatch_is_neither_claimed_nor_finished_again() -> None:
    world, metrics = World(), RecordedMetrics()
    task = await world.new_task()
    await process(world, metrics)(task.id)
    await process(world, metrics)(task.id)
    assert [e[0] for e in metrics.events] == ["claimed", "finished"]


async def test_recovery_counts_what_it_takes_back_and_what_it_gives_up_on() -> None:
    world, metrics = World(), RecordedMetrics()
    jobs = []
    for _ in range(2):
        task = await world.new_task()
        processor = BlockingProcessor()
        jobs.append(asyncio.create_task(world.process(processor)(task.id)))
        await processor.started.wait()
    world.clock.advance(LEASE.total_seconds() + 1)
    recover = RecoverExpiredLeases(world.store.unit_of_work, world.clock, world.signal,
                                   max_attempts=1, metrics=metrics)
    assert await recover() == 2
    assert metrics.named("recovered") == [(2,)]
    assert metrics.named("finished") == [(S.ERROR, None), (S.ERROR, None)]
    for job in jobs:
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job


async def test_cancelling_a_new_task_counts_it_as_finished_in_error() -> None:
    world, metrics = World(), RecordedMetrics()
    task = await world.new_task()
    cancel = CancelTask(world.steps, world.clock, metrics=metrics)
    await cancel(task.id, actor="ops", reason="duplicate")
    assert metrics.named("finished") == [(S.ERROR, None)]


async def test_the_dispatch_carries_the_trace_of_the_request_that_created_the_task() -> None:
    world, tracer = World(), RecordedTracer()
    with tracer.span("POST /tasks", kind="server") as request:
        task = (await create(world, RecordedMetrics(), tracer)(NewTaskRequest(title="t"))).task
    [dispatch] = world.signal.sent.values()
    assert (dispatch.task_id, dispatch.trace) == (task.id, request.context)


async def test_without_a_span_the_dispatch_carries_no_trace() -> None:
    world = World()
    await create(world, RecordedMetrics(), RecordedTracer())(NewTaskRequest(title="t"))
    assert [d.trace for d in world.signal.sent.values()] == [None]


async def test_a_retry_is_dispatched_in_the_trace_of_the_retry_request() -> None:
    world, tracer = World(), RecordedTracer()
    task = await world.new_task()
    await world.process(FixedProcessor("boom"))(task.id)
    world.store.outbox.clear()
    retry = RetryTask(world.steps, world.clock, world.signal,
                      tracer=tracer)
    with tracer.span("POST /tasks/{task_id}/retry", kind="server") as request:
        await retry(task.id, actor=None, reason=None)
    assert [d.trace for d in world.store.outbox] == [request.context]


async def test_claim_work_and_finish_are_spans_of_the_task_inside_the_callers_span() -> None:
    world, tracer = World(), RecordedTracer()
    task = await world.new_task()
    with tracer.span("process tasks.dispatch", parent="from-message", kind="consumer") as outer:
        await process(world, RecordedMetrics(), FixedProcessor("no paper"), tracer)(task.id)
    steps = [s for s in tracer.spans if s is not outer]
    assert [(s.name, s.task_id, s.parent, s.ended) for s in steps] == [
        ("task.claim", task.id, outer.context, True),
        ("task.process", task.id, outer.context, True),
        ("task.finish", task.id, outer.context, True),
    ]
    assert steps[-1].attributes == {"task.outcome": S.ERROR}
