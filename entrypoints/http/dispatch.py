"""Pausing dispatch over HTTP, and why a task waits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import Body

from application.diagnosis import DiagnoseTask, Diagnosis
from application.pause import DispatchState, ReadDispatch, SwitchDispatch
from entrypoints.http.access import actor_of, needs
from entrypoints.http.docs import DocumentedOperation, TaskId, responses
from entrypoints.keys import Scope
from entrypoints.wire import ActionIn, Wire

Action = Annotated[ActionIn | None, Body(
    description="Optional: `{\"reason\": \"...\"}`, logged with the actor.",
    schema_extra={"additionalProperties": False})]
State = Literal["finished", "cancel_requested", "lease_expired", "running", "scheduled",
                "paused", "dispatch_pending", "no_workers", "queued"]


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


class DispatchOut(Wire):
    paused: bool
    since: Annotated[datetime | None, msgspec.Meta(
        description="When the last pause or resume happened; null before the first.")]
    actor: Annotated[str | None, msgspec.Meta(description="Who did it (the API key's name).")]
    reason: str | None

    @classmethod
    def of(cls, state: DispatchState) -> DispatchOut:
        return cls(paused=state.paused, since=_utc(state.since), actor=state.actor,
                   reason=state.reason)


class DiagnosisOut(Wire):
    task_id: uuid.UUID
    status: str
    state: Annotated[State, msgspec.Meta(description="The first of the states that applies.")]
    since: Annotated[datetime | None, msgspec.Meta(description="Since when it applies.")]
    detail: Annotated[str, msgspec.Meta(description="One sentence for a person.")]
    facts: Annotated[dict[str, Any], msgspec.Meta(description="The figures behind it.")]

    @classmethod
    def of(cls, d: Diagnosis) -> DiagnosisOut:
        return cls(task_id=d.task_id, status=d.status.value, state=d.state,  # type: ignore[arg-type]
                   since=_utc(d.since), detail=d.detail,
                   facts={k: _utc(v) for k, v in d.facts.items()})


@get("/dispatch", tags=["operators"], summary="Whether dispatch is paused",
     operation_class=DocumentedOperation, **needs(Scope.READ), responses=responses())
async def dispatch_state(read_dispatch: NamedDependency[ReadDispatch]) -> DispatchOut:
    return DispatchOut.of(await read_dispatch())


@post("/dispatch/pause", status_code=200, tags=["operators"], summary="Pause dispatch",
      description="No worker claims a task until resumed (tasks are still accepted, and "
      "running ones finish). Kept in PostgreSQL: every process obeys, and it survives "
      "restarts.", operation_class=DocumentedOperation, **needs(Scope.ADMIN),
      responses=responses())
async def pause(switch_dispatch: NamedDependency[SwitchDispatch],
                request: Request[Any, Any, Any], data: Action = None) -> DispatchOut:
    return DispatchOut.of(await switch_dispatch(
        paused=True, actor=actor_of(request), reason=ActionIn.reason_of(data)))


@post("/dispatch/resume", status_code=200, tags=["operators"], summary="Resume dispatch",
      description="Workers claim again within a second.",
      operation_class=DocumentedOperation, **needs(Scope.ADMIN), responses=responses())
async def resume(switch_dispatch: NamedDependency[SwitchDispatch],
                 request: Request[Any, Any, Any], data: Action = None) -> DispatchOut:
    return DispatchOut.of(await switch_dispatch(
        paused=False, actor=actor_of(request), reason=ActionIn.reason_of(data)))


@get("/tasks/{task_id:uuid}/diagnosis", tags=["tasks"], summary="Why a task is where it is",
     description="One state (the first that applies: finished, cancel_requested, "
     "lease_expired, running, scheduled, paused, dispatch_pending, no_workers, queued), a "
     "sentence for a person, and the facts behind it.",
     operation_class=DocumentedOperation, **needs(Scope.READ),
     responses=responses(r404="No task has this id (or the id is not a UUID)."))
async def diagnosis(task_id: TaskId, diagnose: NamedDependency[DiagnoseTask]) -> DiagnosisOut:
    return DiagnosisOut.of(await diagnose(task_id))


ROUTES = [dispatch_state, pause, resume, diagnosis]
