"""One start-up and shut-down sequence, shared by `tasks api`, `tasks worker` and `tasks dev`."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import structlog

from adapters.postgres.cancels import hear_cancels
from adapters.queues import CREATE, DISPATCH
from application.backoff import Backoff
from entrypoints.container import Container, init_resources, shutdown_resources
from entrypoints.inflight import Inflight
from entrypoints.intake import intake_handler
from entrypoints.loops import Background, every, relay_loop
from entrypoints.readiness import report_readiness
from entrypoints.tracing import flush_traces
from entrypoints.worker import dispatch_handler

log = structlog.get_logger(__name__)
#: How often the API samples the totals for the dashboard's throughput chart (seconds).
THROUGHPUT_EVERY = 5.0
#: How often workers prune finished tasks past TASKS_RETENTION_DAYS, at most (seconds); a
#: tenth of the retention period when that is shorter.
PRUNE_EVERY = 600.0
#: The redispatch sweep looks every quarter of TASKS_REDISPATCH_SECONDS (at most this often, in
#: seconds): a lost dispatch is sent again 1 to 1.25 times that after it was sent.
REDISPATCH_AT_MOST_EVERY = 0.5


@dataclass(frozen=True)
class Roles:
    """What a process does besides serving HTTP (the API's server runs around `running`)."""

    intake: bool = False  # consume `tasks.create`
    worker: bool = False  # consume dispatches, renew its leases, recover others', send lost ones
    streams: bool = False  # feed event streams (the process serves HTTP)


@contextlib.asynccontextmanager
async def running(container: Container, roles: Roles) -> AsyncIterator[None]:
    """Open the resources (the pool and the broker connect in the background, so a process
    starts while PostgreSQL or RabbitMQ is still down), start the loops and the consumers.

    On exit, in this order: take no new messages, finish or hand back what is in flight within
    the grace period, stop the loops, close the broker and the pool.
    """
    settings = container.settings()
    grace = settings.shutdown_grace_seconds
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(flush_traces, container.tracer())  # the very last step
        await init_resources(container)
        stack.push_async_callback(shutdown_resources, container)
        broker = container.broker()
        loops = Background()
        stack.push_async_callback(loops.stop)
        # every process that writes the outbox publishes its own dispatches at once (a create's
        # send), and the outbox's when told (retries, recoveries) or every relay interval
        loops.start(relay_loop(container.relay()), "relay")
        loops.start(report_readiness(container.readiness()), "readiness")
        if roles.streams:
            loops.start(container.watch().run(), "watch")
            loops.start(every("throughput", THROUGHPUT_EVERY, container.throughput().sample),
                        "throughput")
        listener = container.listener()
        if listener is not None:  # None on in-memory adapters: the store tells its hooks
            if roles.worker:  # NOTIFY by the trigger tasks_cancel_notify (migration 0002)
                hear_cancels(listener, container.stops())
                container.pause()  # hears dispatch_state_notify (0010): made before it listens
            loops.start(listener.run(), "listener")
        consumers: list[tuple[str, int, Inflight]] = []
        if roles.worker:
            loops.start(every("lease_renewal", settings.lease_renew_seconds,
                              container.renew_leases()), "renew")
            loops.start(every("recovery", settings.recovery_interval_seconds,
                              container.recover(), first_delay=1.0), "recovery")
            loops.start(every("redispatch",
                              max(REDISPATCH_AT_MOST_EVERY, settings.redispatch_seconds / 4),
                              container.redispatch(), first_delay=1.0, backoff=Backoff()),
                        "redispatch")
            if settings.retention_days is not None:
                keep = timedelta(days=settings.retention_days)
                often = min(PRUNE_EVERY, max(1.0, keep.total_seconds() / 10))
                loops.start(every("retention", often,
                                  functools.partial(container.prune_tasks().until_done, keep),
                                  first_delay=min(often, 30.0)), "retention")
            work = Inflight("worker", grace)
            await broker.consume_dispatches(
                settings.worker_concurrency,
                work.track(dispatch_handler(container.process_task(), container.tracer())))
            consumers.append((DISPATCH, settings.worker_concurrency, work))
        if roles.intake:
            intake = Inflight("intake", grace)
            await broker.consume(CREATE, settings.intake_prefetch,
                                 intake.track(intake_handler(container.create_task(),
                                                          container.tracer())))
            consumers.append((CREATE, settings.intake_prefetch, intake))
        for _, _, inflight in consumers:
            stack.push_async_callback(inflight.drain)
        stack.push_async_callback(broker.stop_consuming)
        log.info("process_started", worker=container.worker_id() if roles.worker else None,
                 consumers={queue: prefetch for queue, prefetch, _ in consumers})
        yield
        log.info("process_stopping")
    log.info("process_stopped")
