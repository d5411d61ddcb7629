"""GET /stats: counts by status and recent throughput, for the dashboard and for people."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency

from application.messaging import DispatchQueue
from application.stats import GetCounts, Throughput
from domain.errors import ServiceUnavailable
from domain.status import TaskStatus
from entrypoints.http.access import needs
from entrypoints.http.docs import DocumentedOperation, responses
from entrypoints.keys import Scope
from entrypoints.wire import Wire


class RateOut(Wire):
    at: Annotated[str, msgspec.Meta(description="End of the interval (RFC 3339 UTC).")]
    created_per_second: float
    finished_per_second: float


class QueueOut(Wire):
    queue: Annotated[str, msgspec.Meta(description="The dispatch queue's name.")]
    ready: Annotated[int, msgspec.Meta(description="Dispatches waiting for a worker.")]
    consumers: Annotated[int, msgspec.Meta(description="Workers' consumers on it.")]


#: how long /stats waits for RabbitMQ's answer about the dispatch queues (seconds)
QUEUES_WAIT_SECONDS = 2.0


class StatsOut(Wire):
    by_status: Annotated[dict[TaskStatus, int], msgspec.Meta(
        description="Tasks in each status now.")]
    oldest_new_age_seconds: Annotated[float | None, msgspec.Meta(
        description="How long the oldest task in `new` has waited; null when none waits.")]
    created_total: Annotated[int, msgspec.Meta(description="Tasks created so far.")]
    finished_total: Annotated[dict[TaskStatus, int], msgspec.Meta(
        description="Tasks finished so far, by final status (a retried task counts again).")]
    throughput: Annotated[list[RateOut], msgspec.Meta(
        description="Created and finished per second, in intervals of a few seconds over "
        "the last minutes, oldest first (measured by this API process while it runs).")]
    dispatch_queues: Annotated[list[QueueOut] | None, msgspec.Meta(
        description="Each dispatch queue (TASKS_DISPATCH_QUEUES of them); null when RabbitMQ "
        "did not answer in time.")] = None


@get("/stats", tags=["tasks"], summary="Counts by status and recent throughput",
     operation_class=DocumentedOperation, **needs(Scope.READ), responses=responses())
async def stats(counts: NamedDependency[GetCounts], throughput: NamedDependency[Throughput],
                dispatch_queue: NamedDependency[DispatchQueue]) -> StatsOut:
    now = await counts()
    queues = None
    with contextlib.suppress(ServiceUnavailable, TimeoutError):
        looks = await asyncio.wait_for(dispatch_queue.looks(), QUEUES_WAIT_SECONDS)
        queues = [QueueOut(queue=name, ready=look.ready, consumers=look.consumers)
                  for name, look in looks.items()]
    return StatsOut(
        by_status=now.by_status, oldest_new_age_seconds=counts.waited(now),
        created_total=now.created,
        finished_total=now.finished,
        throughput=[RateOut(at=r.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                            created_per_second=round(r.created_per_second, 3),
                            finished_per_second=round(r.finished_per_second, 3))
                    for r in throughput.rates],
        dispatch_queues=queues)


ROUTES = [stats]
