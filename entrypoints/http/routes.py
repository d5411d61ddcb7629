"""HTTP routes: parse, call one use case, map the result. Nothing else."""

from __future__ import annotations

from typing import Annotated

from litestar import HttpMethod, Response, get, post, route
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, HeaderParameter, Parameter, QueryParameter

from application.create import CreateTask, CreateTasks
from application.health import CheckReadiness
from application.model import Cursor, ListQuery
from application.queries import GetHistory, GetTask, ListTasks
from domain.errors import ServiceUnavailable
from domain.status import TaskSource, TaskStatus
from entrypoints.http.access import needs
from entrypoints.http.docs import SERVER_ERROR, DocumentedOperation, TaskId, problem, responses
from entrypoints.keys import Scope
from entrypoints.wire import (
    BatchIn,
    BatchOut,
    Readiness,
    TaskIn,
    TaskOut,
    TaskPage,
    TransitionOut,
)

LOCATION = ResponseHeader(name="Location", description="URL of the task: `/tasks/{id}`.",
                          documentation_only=True, required=True)
REPLAYED = ResponseHeader(
    name="Idempotent-Replayed", documentation_only=True,
    description="`true` when an earlier request with the same Idempotency-Key made this task.",
)
#: `additionalProperties: false` says in the document what msgspec's forbid_unknown_fields does.
NewTask = Annotated[TaskIn, Body(schema_extra={"additionalProperties": False})]
NewBatch = Annotated[BatchIn, Body(schema_extra={"additionalProperties": False})]


@post(
    "/tasks", status_code=201, tags=["tasks"], summary="Create a task",
    description="Stores the task as `new` and queues it for a worker, in one transaction. "
    "The body is read as JSON whatever its Content-Type; unknown fields are refused.",
    operation_class=DocumentedOperation, **needs(Scope.WRITE),
    response_headers=[LOCATION, REPLAYED],
    responses=responses(
        r409="The Idempotency-Key was already used with a different body.",
        r413="The body is larger than TASKS_MAX_BODY_BYTES.",
    ),
)
async def create_task(
    data: NewTask,
    create: NamedDependency[CreateTask],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255, required=False,
                  description="Makes the call safe to repeat: the same key and body return "
                  "the same task; the same key with another body is a 409."),
    ] = None,
) -> Response[TaskOut]:
    created = await create(data.to_request(TaskSource.API, idempotency_key))
    headers = {"Location": f"/tasks/{created.task.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(TaskOut.of(created.task), status_code=201, headers=headers)


@post(
    "/tasks/batch", status_code=201, tags=["tasks"], summary="Create many tasks at once",
    description="1 to 1,000 tasks in one transaction: all are created or none is. A bad item "
    "makes the whole request a 400 whose `detail` names the first one as `tasks[i]` (from 0). "
    "An Idempotency-Key covers the whole batch.",
    operation_class=DocumentedOperation, **needs(Scope.WRITE),
    response_headers=[REPLAYED],
    responses=responses(
        r409="The Idempotency-Key was already used with a different batch.",
        r413="The body is larger than TASKS_MAX_BODY_BYTES.",
    ),
)
async def create_tasks(
    data: NewBatch,
    create_many: NamedDependency[CreateTasks],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200, required=False,
                        description="Makes the call safe to repeat: the same key and batch "
                        "return the same tasks; the same key with another batch is a 409."),
    ] = None,
) -> Response[BatchOut]:
    created = await create_many(data.to_requests(TaskSource.API), idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
    return Response(BatchOut(items=[TaskOut.of(t) for t in created.tasks]), status_code=201,
                    headers=headers)


@get("/tasks/{task_id:uuid}", tags=["tasks"], summary="Get a task",
     operation_class=DocumentedOperation, **needs(Scope.READ),
     responses=responses(r404="No task has this id (or the id is not a UUID)."))
async def get_task(task_id: TaskId, get_one: NamedDependency[GetTask]) -> TaskOut:
    return TaskOut.of(await get_one(task_id))


@get("/tasks/{task_id:uuid}/history", tags=["tasks"], summary="Status history of a task",
     description="Every status change, oldest first, with the worker or the operator "
     "(`actor`) that made it.",
     operation_class=DocumentedOperation, **needs(Scope.READ),
     responses=responses(r404="No task has this id (or the id is not a UUID)."))
async def get_history(task_id: TaskId, history: NamedDependency[GetHistory]
                      ) -> list[TransitionOut]:
    return [TransitionOut.of(t) for t in await history(task_id)]


@get("/tasks", tags=["tasks"], summary="List tasks, newest first",
     description="Keyset pagination: follow `next_cursor` until it is null.",
     operation_class=DocumentedOperation, **needs(Scope.READ), responses=responses())
async def list_tasks(
    list_all: NamedDependency[ListTasks],
    status: Annotated[
        list[TaskStatus] | None,
        QueryParameter(name="status", required=False,
                  description="Only tasks in one of these statuses (repeat for several)."),
    ] = None,
    limit: Annotated[int, Parameter(ge=1, le=500, description="Page size, 1..500.")] = 50,
    cursor: Annotated[
        str | None,
        Parameter(required=False, pattern=Cursor.PATTERN,
                  description="`next_cursor` of the previous page (opaque: a cursor that this "
                  "service did not make is a 400)."),
    ] = None,
) -> TaskPage:
    query = ListQuery(
        statuses=frozenset(status or ()),
        limit=limit,
        after=Cursor.decode(cursor) if cursor is not None else None,
    )
    return TaskPage.of(await list_all(query))


def options(path: str, *handlers: HTTPRouteHandler) -> HTTPRouteHandler:
    """`OPTIONS path` answering with every method of `handlers` in `Allow`.

    Litestar 2 builds its own OPTIONS handler when the first handler of a path is registered and
    never updates it, so `OPTIONS /tasks` said `Allow: OPTIONS, POST` (litestar issue #4169,
    fixed in v3). Registered before `handlers`, this one stops Litestar from making its own.
    """
    allow = ", ".join(sorted({m for h in handlers for m in h.http_methods} | {"OPTIONS"}))

    @route(path, http_method=HttpMethod.OPTIONS, include_in_schema=False,
           sync_to_thread=False, status_code=204)
    def handler() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow})

    return handler


@get("/health/live", tags=["health"], summary="The process is running",
     operation_class=DocumentedOperation, responses={500: SERVER_ERROR})
async def live() -> Readiness:
    return Readiness(status="ok", checks={})


@get("/health/ready", tags=["health"], summary="PostgreSQL and RabbitMQ are reachable",
     operation_class=DocumentedOperation,
     responses={503: problem("A dependency is down; `detail` names which."), 500: SERVER_ERROR})
async def ready(readiness: NamedDependency[CheckReadiness]) -> Readiness:
    checks = await readiness()
    down = {name: why for name, why in checks.items() if why != "ok"}
    if down:
        raise ServiceUnavailable("; ".join(f"{name}: {why}" for name, why in down.items()))
    return Readiness(status="ok", checks=checks, servers=dict(readiness.servers))


ROUTES = [
    options("/tasks", create_task, list_tasks),
    create_task, create_tasks, list_tasks, get_task, get_history, live, ready,
]
