"""GET /stats: counts by status and recent throughput, for the dashboard and for people."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency

from application.stats import GetCounts, Throughput
from domain.status import TaskStatus
from entrypoints.http.access import needs
from entrypoints.http.docs import DocumentedOperation, responses
from entrypoints.keys import Scope
from entrypoints.wire import Wire


class RateOut(Wire):
    at: Annotated[str, msgspec.Meta(description="End of the interval (RFC 3339 UTC).")]
    created_per_second: float
    finished_per_second: float


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


@get("/stats", tags=["tasks"], summary="Counts by status and recent throughput",
     operation_class=DocumentedOperation, **needs(Scope.READ), responses=responses())
async def stats(counts: NamedDependency[GetCounts],
                throughput: NamedDependency[Throughput]) -> StatsOut:
    now = await counts()
    return StatsOut(
        by_status=now.by_status, oldest_new_age_seconds=counts.waited(now),
        created_total=now.created,
        finished_total=now.finished,
        throughput=[RateOut(at=r.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                            created_per_second=round(r.created_per_second, 3),
                            finished_per_second=round(r.finished_per_second, 3))
                    for r in throughput.rates])


ROUTES = [stats]
