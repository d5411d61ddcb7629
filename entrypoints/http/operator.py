"""Operator actions over HTTP: retry a failed task, cancel an unfinished one."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body

from application.operator import CancelTask, RetryTask
from entrypoints.http.access import actor_of, needs
from entrypoints.http.docs import DocumentedOperation, TaskId, responses
from entrypoints.keys import Scope
from entrypoints.wire import ActionIn, TaskOut

Action = Annotated[ActionIn | None, Body(
    description="Optional: `{\"reason\": \"...\"}`, kept in the history with the actor.",
    schema_extra={"additionalProperties": False})]
NOT_FOUND = "No task has this id (or the id is not a UUID)."
STOPPING = ResponseSpec(TaskOut, generate_examples=False, description=(
    "The task is running: its worker has been asked to stop it (it ends in `error` shortly)."))


@post("/tasks/{task_id:uuid}/retry", status_code=200, tags=["operators"],
      summary="Retry a failed task",
      description="A task in `error` goes back to `new` and is dispatched again; `error` "
      "becomes null and `attempts` keeps counting. The history records who and why.",
      operation_class=DocumentedOperation, **needs(Scope.ADMIN),
      responses=responses(r404=NOT_FOUND, r409="The task is not in `error`."))
async def retry_task(task_id: TaskId, retry: NamedDependency[RetryTask],
                     request: Request[Any, Any, Any], data: Action = None) -> TaskOut:
    task = await retry(task_id, actor_of(request), ActionIn.reason_of(data))
    return TaskOut.of(task)


@post("/tasks/{task_id:uuid}/cancel", status_code=200, tags=["operators"],
      summary="Cancel a task that has not finished",
      description="A `new` task ends in `error` at once (200). An `in_progress` task is "
      "stopped by its worker within about 2 s and then ends in `error` (202, with the task as "
      "it is now). Either way the error text starts with `cancelled`.",
      operation_class=DocumentedOperation, **needs(Scope.ADMIN),
      responses={202: STOPPING, **responses(
          r404=NOT_FOUND, r409="The task is already final (`completed` or `error`).")})
async def cancel_task(task_id: TaskId, cancel: NamedDependency[CancelTask],
                      request: Request[Any, Any, Any], data: Action = None) -> Response[TaskOut]:
    done = await cancel(task_id, actor_of(request), ActionIn.reason_of(data))
    return Response(TaskOut.of(done.task), status_code=200 if done.stopped else 202)


ROUTES = [retry_task, cancel_task]
