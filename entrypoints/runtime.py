"""What each long-running command runs beside its main job, started and stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar

from adapters.memory import InMemoryDispatchQueue
from adapters.rabbitmq.connection import Consumer, start_with_retry
from adapters.rabbitmq.topology import CREATE, DISPATCH
from entrypoints.container import Container, init_resources, shutdown_resources
from entrypoints.http.app import Lifespan
from entrypoints.intake import intake_handler
from entrypoints.loops import Background, every, relay_loop
from entrypoints.worker import WorkerRuntime, consume_memory, dispatch_handler

log = structlog.get_logger(__name__)


def api_lifespan(container: Container, intake: bool) -> Lifespan:
    """Pool, broker (with retry, in the background), outbox relay and, optionally, intake."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings = container.settings()
        await init_resources(container)
        broker, lane = container.broker(), container.lane()
        consumers: list[Consumer] = []
        if intake:
            handler = intake_handler(broker, container.create_task())
            consumers.append((CREATE, settings.intake_prefetch, handler))
        loops = Background()
        stop = asyncio.Event()
        loops.start(start_with_retry(broker, lane, stop, consumers), "broker-connect")
        _start_relay(loops, container)
        log.info("api_started", intake=intake)
        try:
            yield
        finally:
            stop.set()
            await loops.stop()
            await lane.close()
            await broker.stop()
            await shutdown_resources(container)
            log.info("api_stopped")

    return lifespan


async def run_worker(container: Container, stop: asyncio.Event) -> None:
    """Consume until `stop` is set, then drain, hand back, and close."""
    settings = container.settings()
    await init_resources(container)
    broker = container.broker()
    lane = container.lane()
    runtime = WorkerRuntime(container.process_task(), settings.shutdown_grace_seconds)
    consumers = [(DISPATCH, settings.worker_concurrency, dispatch_handler(runtime))]
    loops = Background()
    _start_relay(loops, container)
    _start_lease_upkeep(loops, container)
    log.info("worker_started", worker=container.worker_id(),
             concurrency=settings.worker_concurrency)
    try:
        if await start_with_retry(broker, lane, stop, consumers):
            await stop.wait()
    finally:
        await runtime.drain()
        await loops.stop()
        await lane.close()
        await broker.stop()
        await shutdown_resources(container)
        log.info("worker_stopped", worker=container.worker_id())


def dev_lifespan(container: Container, queue: InMemoryDispatchQueue) -> Lifespan:
    """Everything in one process on in-memory adapters: relay, worker, lease upkeep."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings = container.settings()
        await init_resources(container)
        runtime = WorkerRuntime(container.process_task(), settings.shutdown_grace_seconds)
        loops = Background()
        _start_relay(loops, container)
        loops.start(consume_memory(queue, runtime, settings.worker_concurrency), "worker")
        _start_lease_upkeep(loops, container)
        log.info("dev_started", note="in-memory storage and queue: nothing is kept on exit")
        try:
            yield
        finally:
            await runtime.drain()
            await loops.stop()
            await shutdown_resources(container)

    return lifespan


def _start_relay(loops: Background, container: Container) -> None:
    """Every process that writes the outbox also drains it."""
    interval = container.settings().relay_interval_seconds
    loops.start(relay_loop(container.relay(), container.signal(), interval), "relay")


def _start_lease_upkeep(loops: Background, container: Container) -> None:
    """Renew this process's leases; reclaim the expired leases of dead workers."""
    settings = container.settings()
    loops.start(every("lease_renewal", settings.lease_renew_seconds, container.renew_leases()),
                "renew")
    loops.start(every("recovery", settings.recovery_interval_seconds, container.recover(),
                      first_delay=1.0), "recovery")
