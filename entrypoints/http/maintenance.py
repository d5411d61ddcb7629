"""Maintenance over HTTP: prune finished tasks (dead letters live in deadletters.py)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPI, OpenAPIType, RequestBody, Schema
from litestar.params import Body

from application.retention import PruneTasks
from domain.errors import InvalidInput
from entrypoints.http.access import needs
from entrypoints.http.docs import DocumentedOperation, responses
from entrypoints.keys import Scope
from entrypoints.settings import Settings
from entrypoints.wire import Wire

#: the oldest cutoff a prune takes, in days (a century)
MAX_DAYS = 36_500


class PruneIn(Wire):
    older_than_days: Annotated[float, msgspec.Meta(
        gt=0, le=MAX_DAYS, description="Finished more than this many days ago; null: "
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
                request: Request[Any, Any, Any],
                data: Annotated[PruneIn | None, Body(
                    schema_extra={"additionalProperties": False})] = None) -> PruneOut:
    raw = await request.json() if data is not None else None
    if isinstance(raw, dict) and not isinstance(raw.get("dry_run", False), bool):
        # Litestar's lax conversion would read 0 or "false" as a boolean
        raise InvalidInput("body: dry_run must be true or false")
    asked = data or PruneIn()
    days = asked.older_than_days if asked.older_than_days is not None else settings.retention_days
    if days is None:
        raise InvalidInput("older_than_days is required: TASKS_RETENTION_DAYS is not set")
    pruned = await prune_tasks(timedelta(days=days), dry_run=asked.dry_run)
    return PruneOut(cutoff=pruned.cutoff.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    dry_run=pruned.dry_run, matched=pruned.matched, deleted=pruned.deleted,
                    more=pruned.more)


ROUTES = [prune]


def document_prune_body(document: OpenAPI, retention_days: float | None) -> None:
    """Without TASKS_RETENTION_DAYS a prune must say how old: this instance's document then
    requires the body and its `older_than_days`, so that no call it allows is refused."""
    if retention_days is not None:
        return
    item = (document.paths or {}).get("/maintenance/prune")
    body = item.post.request_body if item is not None and item.post is not None else None
    if not isinstance(body, RequestBody):
        return
    body.required = True
    for media in (body.content or {}).values():
        media.schema = Schema(
            type=OpenAPIType.OBJECT, additional_properties=False, required=["older_than_days"],
            properties={
                "older_than_days": Schema(
                    type=OpenAPIType.NUMBER, exclusive_minimum=0, maximum=MAX_DAYS,
                    description="Finished more than this many days ago (required here: "
                    "TASKS_RETENTION_DAYS is not set)."),
                "dry_run": Schema(type=OpenAPIType.BOOLEAN, default=False,
                                  description="Only count what would go."),
            })
