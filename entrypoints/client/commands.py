"""The task commands: submit, show, list, watch, retry, cancel. Each returns the exit status."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from entrypoints.client.http import Service, ServiceError
from entrypoints.client.output import FINAL, Out, clean
from entrypoints.client.sse import Event, follow
from entrypoints.client.views import change_line, list_table, task_lines

#: The service's largest page.
PAGE = 500


def now() -> datetime:
    return datetime.now().astimezone()


def submit(service: Service, args: argparse.Namespace, out: Out) -> int:
    body: dict[str, Any] = {"title": args.title}
    if args.description is not None:
        body["description"] = args.description
    if args.payload is not None:
        body["payload"] = args.payload
    if args.run_at is not None:
        body["run_at"] = args.run_at
    if args.delay is not None:
        body["delay_seconds"] = args.delay
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    answer = service.call("POST", "/tasks", body=body, headers=headers)
    task = answer.json()
    if out.as_json:
        out.document(task)
    else:
        out.line(task["id"])
        if answer.headers.get("Idempotent-Replayed") == "true":
            note("an earlier submit with this idempotency key made this task")
    return watch_events(service, task["id"], out, skip_first=True) if args.wait else 0


def show(service: Service, args: argparse.Namespace, out: Out) -> int:
    task = service.json("GET", f"/tasks/{args.id}")
    history = service.json("GET", f"/tasks/{args.id}/history")
    diagnosis = _diagnosis(service, args.id)
    if out.as_json:
        out.document({**task, "history": history, "diagnosis": diagnosis})
    else:
        out.lines(task_lines(out, task, history, now(), diagnosis))
    return 0


def _diagnosis(service: Service, task_id: str) -> dict[str, Any] | None:
    """Why the task is where it is; None (said on stderr) when the service cannot tell now:
    the task itself is still worth showing."""
    try:
        found: dict[str, Any] = service.json("GET", f"/tasks/{task_id}/diagnosis")
    except ServiceError as exc:
        note(f"no diagnosis: {exc}")
        return None
    return found


def list_tasks(service: Service, args: argparse.Namespace, out: Out) -> int:
    """Newest first: pages of up to 500 until `--limit` tasks, following `next_cursor`."""
    tasks: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": min(PAGE, args.limit - len(tasks))}
        if args.status:
            params["status"] = args.status
        if cursor:
            params["cursor"] = cursor
        page = service.json("GET", "/tasks", params=params)
        tasks += page["items"]
        if out.as_json:
            for task in page["items"]:
                out.document(task)
        cursor = page.get("next_cursor")
        if not cursor or len(tasks) >= args.limit:
            break
    if not out.as_json:
        if tasks:
            out.lines(list_table(out, tasks, now()))
        if cursor:
            out.line(out.paint("dim", f"(the newest {len(tasks)}; --limit shows more)"))
        elif not tasks:
            out.line(f"no tasks{' in ' + ', '.join(args.status) if args.status else ''}")
    return 0


def watch(service: Service, args: argparse.Namespace, out: Out) -> int:
    return watch_events(service, args.id, out)


def watch_events(service: Service, task_id: str, out: Out, skip_first: bool = False) -> int:
    """Each change as it happens, until the service ends the stream after a final one (a
    task's replayed history may hold an `error` that a retry undid): 0 if the task completed,
    1 if not. `skip_first` leaves out the creation, which `submit` has just shown."""
    path = f"/tasks/{task_id}/events"
    status = "new"
    for event in follow(lambda last: service.lines(path, last), finished=_final,
                        on_drop=lambda why: note(f"lost the event stream ({why}); resuming")):
        if event.event != "transition":
            continue
        change = json.loads(event.data)
        status = change["to_status"]
        if skip_first and change.get("from_status") is None:
            continue
        if out.as_json:
            out.line(event.data)
        else:
            out.line(change_line(out, change, now()))
    return 0 if status == "completed" else 1


def _final(event: Event) -> bool:
    return event.event == "transition" and json.loads(event.data)["to_status"] in FINAL


def retry(service: Service, args: argparse.Namespace, out: Out) -> int:
    task = service.json("POST", f"/tasks/{args.id}/retry", body=_reason(args))
    if out.as_json:
        out.document(task)
    else:
        done = task["attempts"]
        out.line(f"retried: the task is {out.paint(task['status'], task['status'])} again, on "
                 f"its way to a worker ({done} attempt{'s' if done != 1 else ''} so far)")
    return 0


def cancel(service: Service, args: argparse.Namespace, out: Out) -> int:
    answer = service.call("POST", f"/tasks/{args.id}/cancel", body=_reason(args))
    task = answer.json()
    if out.as_json:
        out.document(task)
    elif answer.status_code == 202:
        out.line("stopping: its worker is cancelling it (tasks watch follows it to the end)")
    else:
        out.line(f"cancelled: the task ended in {out.paint('error', task['status'])} "
                 f"({clean(task.get('error'))})")
    return 0


def _reason(args: argparse.Namespace) -> dict[str, Any]:
    return {"reason": args.reason} if args.reason is not None else {}


def note(text: str) -> None:
    """A remark for the person, on stderr: it never mixes with what a script reads."""
    print(f"tasks: {text}", file=sys.stderr, flush=True)
