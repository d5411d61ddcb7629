"""Maintenance over HTTP: prune finished tasks (dead letters live in deadletters.py)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Annotated

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import Body

from application.retention import PruneTasks
from domain.errors import InvalidInput
from entrypoints.http.access import needs
from entrypoints.http.docs import DocumentedOperation, responses
from entrypoints.keys import Scope
from entrypoints.settings import Settings
from entrypoints.wire import Wire


class PruneIn(Wire):
    older_than_days: Annotated[float, msgspec.Meta(
        gt=0, le=36_500, description="Finished more than this many days ago; null: "
        "TASKS_RETENTION_DAYS.")] | None = None
    dry_run: Annotated[bool, msgspec.Meta(description="Only count what would go.")] = False


class PruneOut(Wire):
    cutoff: Annotated[str, msgspec.Meta(description="Tasks finished before this went.")]
    dry_run: bool
    matched: Annotated[int, msgspec.Meta(description="Finished before the cutoff when the "
                                         "call began.")]
    deleted: int
    more: Annotated[bool, msgspec.Meta(description="Call again: a call stops after a few "
                                       "seconds (or another pruner is at work).")]


@post("/maintenance/prune", status_code=200, tags=["operators"],
      summary="Delete finished tasks older than a cutoff, with their history",
      description="In batches of a few thousand rows, one short transaction each, so that "
      "creates and workers never wait; for at most a few seconds per call (`more` says "
      "whether to call again). Only one pruner works at a time.",
      operation_class=DocumentedOperation, **needs(Scope.ADMIN), responses=responses())
async def prune(prune_tasks: NamedDependency[PruneTasks], settings: NamedDependency[Settings],
                data: Annotated[PruneIn | None, Body(
                    schema_extra={"additionalProperties": False})] = None) -> PruneOut:
    asked = data or PruneIn()
    days = asked.older_than_days if asked.older_than_days is not None else settings.retention_days
    if days is None:
        raise InvalidInput("older_than_days is required: TASKS_RETENTION_DAYS is not set")
    pruned = await prune_tasks(timedelta(days=days), dry_run=asked.dry_run)
    return PruneOut(cutoff=pruned.cutoff.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    dry_run=pruned.dry_run, matched=pruned.matched, deleted=pruned.deleted,
                    more=pruned.more)


ROUTES = [prune]
