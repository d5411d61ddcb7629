"""The dependency-injector container: the only place that knows which adapter serves which port."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool

from adapters.memory import InMemoryBroker, InMemoryStore, InMemoryUnitOfWork
from adapters.memory.backlog import InMemoryDispatchQueue
from adapters.memory.deadletters import InMemoryDeadLetters
from adapters.memory.events import InMemoryEventLog
from adapters.memory.steps import InMemoryPauseSwitch, InMemoryTaskStore
from adapters.postgres.events import PostgresEventLog
from adapters.postgres.listener import PostgresListener
from adapters.postgres.pause import PostgresPauseSwitch
from adapters.postgres.pool import PostgresProbe, make_pool, open_pool
from adapters.postgres.store import PostgresTaskStore
from adapters.postgres.uow import PostgresUnitOfWork
from adapters.rabbitmq.backlog import RabbitDispatchQueue
from adapters.rabbitmq.broker import RabbitMQ
from adapters.rabbitmq.deadletters import RabbitDeadLetters
from adapters.system import EmulatedProcessor, SystemClock, Uuid7Source
from adapters.telemetry.prometheus import PrometheusMetrics
from adapters.timeouts import OUTBOX_HOLD_SECONDS
from application.create import CreateTask, CreateTasks
from application.deadletters import ListDeadLetters, ReplayDeadLetters
from application.diagnosis import DiagnoseTask
from application.gauges import ReadGauges
from application.health import CheckReadiness
from application.leases import RecoverExpiredLeases, RenewLeases
from application.operator import CancelTask, RetryTask
from application.pause import ReadDispatch, SwitchDispatch
from application.process import ProcessTask
from application.queries import GetHistory, GetTask, ListTasks
from application.redispatch import RedispatchLost
from application.relay import RelayDispatches
from application.retention import PruneTasks
from application.stats import GetCounts, Throughput
from application.stops import StopRequests
from application.telemetry import NO_TRACING
from application.watch import WatchTasks
from entrypoints.settings import Settings


async def pool_lifecycle(pool: AsyncConnectionPool[Any]) -> AsyncIterator[None]:
    """Opens in the background (PostgreSQL may come up later); closes on shutdown."""
    await open_pool(pool)
    try:
        yield None
    finally:
        await pool.close()


async def broker_lifecycle(broker: RabbitMQ) -> AsyncIterator[None]:
    """Connects in the background (RabbitMQ may come up later); closes on shutdown."""
    await broker.start()
    try:
        yield None
    finally:
        await broker.close()


#: how long a worker's finish waits for others to share its statement (seconds)
FINISH_LINGER_SECONDS = 0.005


def worker_name() -> str:
    """Host, process id and a random suffix: unique across restarts, findable in `ps`."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    #: set when the process is told to stop: open event streams end at once
    stopping = providers.Singleton(asyncio.Event)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid7Source)
    worker_id = providers.Singleton(worker_name)
    rng = providers.Singleton(random.Random, settings.provided.random_seed)
    processor = providers.Singleton(
        EmulatedProcessor,
        settings.provided.processing_min_seconds,
        settings.provided.processing_max_seconds,
        settings.provided.failure_rate,
        rng,
    )
    lease = providers.Factory(lambda s: timedelta(seconds=s), settings.provided.lease_seconds)
    redispatch_quiet = providers.Factory(lambda s: timedelta(seconds=s),
                                         settings.provided.redispatch_seconds)

    pool = providers.Singleton(
        make_pool, settings.provided.database_url, max_size=settings.provided.db_pool_size
    )
    pool_open = providers.Resource(pool_lifecycle, pool)
    #: OpenTelemetry once entrypoints.tracing has found OTEL_EXPORTER_OTLP_ENDPOINT set
    tracer = providers.Object(NO_TRACING)
    broker = providers.Singleton(RabbitMQ, settings.provided.rabbitmq_urls.call(),
                                 queues=settings.provided.dispatch_queues, tracer=tracer)
    broker_open = providers.Resource(broker_lifecycle, broker)

    uow = providers.Factory(PostgresUnitOfWork, pool)
    #: the steps of a task's life: a request's fail fast in an outage (the client gets a 503)
    store = providers.Singleton(PostgresTaskStore, pool, hold=OUTBOX_HOLD_SECONDS)
    #: the worker's wait outages out, and its finishes wait a moment for company
    worker_store = providers.Singleton(PostgresTaskStore, pool, hold=OUTBOX_HOLD_SECONDS,
                                       linger=FINISH_LINGER_SECONDS, patient=True)
    probes = providers.List(providers.Singleton(PostgresProbe, pool), broker)
    #: one LISTEN connection per process: cancels and the pause switch (worker)
    listener = providers.Singleton(PostgresListener, settings.provided.database_url)
    event_log = providers.Singleton(PostgresEventLog, pool)
    watch = providers.Singleton(WatchTasks, event_log, stopping=stopping)
    stops = providers.Singleton(StopRequests)
    #: dispatch paused or not (a resume is heard through the LISTEN connection)
    pause = providers.Singleton(PostgresPauseSwitch, pool, listener)
    switch_dispatch = providers.Singleton(SwitchDispatch, pause, clock)
    read_dispatch = providers.Singleton(ReadDispatch, pause)

    #: this process's counts, in prometheus-client's registry (or its multiprocess files)
    metrics = providers.Singleton(PrometheusMetrics)
    relay = providers.Singleton(RelayDispatches, store, broker, hold=OUTBOX_HOLD_SECONDS,
                                every=settings.provided.relay_interval_seconds)
    create_task = providers.Singleton(CreateTask, store, clock, ids, relay,
                                      metrics=metrics, tracer=tracer)
    create_tasks = providers.Singleton(CreateTasks, store, clock, ids, relay,
                                       metrics=metrics, tracer=tracer)
    retry_task = providers.Singleton(RetryTask, store, clock, relay, tracer=tracer)
    cancel_task = providers.Singleton(CancelTask, store, clock, metrics=metrics)
    get_task = providers.Singleton(GetTask, uow.provider)
    get_history = providers.Singleton(GetHistory, uow.provider)
    list_tasks = providers.Singleton(ListTasks, uow.provider)
    get_counts = providers.Singleton(GetCounts, uow.provider, clock)
    prune_tasks = providers.Singleton(PruneTasks, uow.provider, clock)
    dead_letter_queues = providers.Singleton(RabbitDeadLetters, broker)
    list_dead_letters = providers.Singleton(ListDeadLetters, dead_letter_queues)
    replay_dead_letters = providers.Singleton(
        ReplayDeadLetters, dead_letter_queues, uow.provider)
    dispatch_queue = providers.Singleton(RabbitDispatchQueue, broker)
    read_gauges = providers.Singleton(ReadGauges, get_counts, dead_letter_queues, dispatch_queue)
    throughput = providers.Singleton(Throughput, get_counts, clock)
    readiness = providers.Singleton(CheckReadiness, probes)
    process_task = providers.Singleton(
        ProcessTask, worker_store, processor, clock, worker_id, lease, stops, pause=pause,
        metrics=metrics, tracer=tracer,
    )
    renew_leases = providers.Singleton(RenewLeases, uow.provider, clock, worker_id, lease, stops)
    recover = providers.Singleton(
        RecoverExpiredLeases, uow.provider, clock, relay, settings.provided.max_attempts,
        metrics=metrics,
    )

    diagnose = providers.Singleton(DiagnoseTask, store, pause, dispatch_queue, broker,
                                   throughput, clock)
    redispatch = providers.Singleton(
        RedispatchLost, uow.provider, clock, dispatch_queue, relay, worker_id, redispatch_quiet,
        settings.provided.max_attempts, metrics=metrics,
    )


def build_container(settings: Settings) -> Container:
    container = Container(settings=settings)
    return container


def use_memory(container: Container) -> InMemoryBroker:
    """Swap PostgreSQL and RabbitMQ for in-memory adapters (`tasks dev`, handler tests)."""
    store = InMemoryStore()
    broker = InMemoryBroker()
    container.uow.override(providers.Factory(InMemoryUnitOfWork, store))
    container.store.override(providers.Singleton(InMemoryTaskStore, store,
                                                 hold=OUTBOX_HOLD_SECONDS))
    container.worker_store.override(container.store)
    container.pause.override(providers.Singleton(InMemoryPauseSwitch, store))
    container.broker.override(providers.Object(broker))
    container.broker_open.override(providers.Object(None))
    container.pool_open.override(providers.Object(None))
    container.probes.override(providers.Object([store, broker]))
    container.event_log.override(providers.Singleton(InMemoryEventLog, store))
    container.dead_letter_queues.override(providers.Singleton(InMemoryDeadLetters, broker))
    container.dispatch_queue.override(providers.Singleton(InMemoryDispatchQueue, broker))
    container.listener.override(providers.Object(None))  # the store tells its hooks itself
    store.on_cancel.append(container.stops().request)
    return broker


async def init_resources(container: Container) -> None:
    """Open the pool (in the background: the database may not be up yet)."""
    pending = container.init_resources()
    if pending is not None:
        await pending


async def shutdown_resources(container: Container) -> None:
    pending = container.shutdown_resources()
    if pending is not None:
        await pending
