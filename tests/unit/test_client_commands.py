"""The task commands on an in-process transport: pages, ids on stdout, exit status by outcome,
and what `show` says about a task that waits."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable

import httpx
import pytest

from entrypoints.client import commands
from entrypoints.client.http import Service
from entrypoints.client.output import Out, moment

TASK_ID = "01a21f4d-f8c0-7d76-8fd6-4dfbadcc6d71"
AT = "2026-11-28T12:00:00Z"


def a_task(n: int = 0, status: str = "new") -> dict[str, object]:
    return {"id": f"01a21f4d-f8c0-7d76-8fd6-{n:012d}", "title": f"t{n}", "description": None,
            "payload": {}, "status": status, "attempts": 0, "error": None, "source": "api",
            "created_at": AT, "updated_at": AT, "started_at": None, "finished_at": None}


def run(handler: Callable[[httpx.Request], httpx.Response], command: str,
        as_json: bool = False, **args: object) -> tuple[int, list[str]]:
    out = Out(as_json=as_json, stream=io.StringIO(), colour=False)
    with Service("http://tasks.test", None, transport=httpx.MockTransport(handler)) as service:
        status = getattr(commands, command)(service, argparse.Namespace(**args), out)
    return status, out.stream.getvalue().splitlines()  # type: ignore[attr-defined]


def test_list_follows_the_cursor_in_pages_of_500_up_to_the_limit() -> None:
    asked: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params.multi_items())
        asked.append(params)
        start = 0 if "cursor" not in params else int(str(params["cursor"]))
        items = [a_task(start + i) for i in range(int(str(params["limit"])))]
        return httpx.Response(200, json={"items": items, "next_cursor": str(start + len(items))})

    status, lines = run(handler, "list_tasks", as_json=True, limit=700, status=["error"])
    assert status == 0
    assert asked == [{"limit": "500", "status": "error"},
                     {"limit": "200", "status": "error", "cursor": "500"}]
    assert [json.loads(line)["title"] for line in lines] == [f"t{n}" for n in range(700)]


def test_a_short_listing_says_that_there_is_more() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [a_task()], "next_cursor": "next"})

    _, lines = run(handler, "list_tasks", limit=1, status=None)
    assert len(lines) == 3 and lines[2] == "(the newest 1; --limit shows more)"


def test_submit_prints_the_id_alone_and_sends_the_idempotency_key() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json=a_task(7))

    status, lines = run(handler, "submit", title="x", description=None, payload={"a": 1},
                        idempotency_key="order-17", wait=False, run_at=None, delay=None)
    assert (status, lines) == (0, ["01a21f4d-f8c0-7d76-8fd6-000000000007"])
    assert json.loads(sent[0].content) == {"title": "x", "payload": {"a": 1}}
    assert sent[0].headers["Idempotency-Key"] == "order-17"


def stream_of(*changes: tuple[str | None, str]) -> bytes:
    frames = [b"retry: 10\n: connected\n\n"]
    for n, (before, after) in enumerate(changes, 1):
        data = {"task_id": TASK_ID, "from_status": before, "to_status": after, "at": AT,
                "attempt": 1, "worker": "w", "reason": None, "actor": None,
                "task": {"error": "emulated failure" if after == "error" else None}}
        frames.append(f"id: {n}\nevent: transition\ndata: {json.dumps(data)}\n\n".encode())
    return b"".join(frames)


def events(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/tasks/{TASK_ID}/events"
        return httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})
    return handler


def test_watch_exits_by_the_last_change_of_the_stream_not_the_first_final_one() -> None:
    retried = stream_of((None, "new"), ("new", "in_progress"), ("in_progress", "error"),
                        ("error", "new"), ("new", "in_progress"), ("in_progress", "completed"))
    status, lines = run(events(retried), "watch", id=TASK_ID)
    assert status == 0 and len(lines) == 6
    failed = stream_of((None, "new"), ("new", "in_progress"), ("in_progress", "error"))
    status, lines = run(events(failed), "watch", as_json=True, id=TASK_ID)
    assert status == 1
    assert [json.loads(line)["to_status"] for line in lines] == ["new", "in_progress", "error"]


def test_submit_sends_a_start_time_or_a_delay() -> None:
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json=a_task(1))

    common = {"title": "x", "description": None, "payload": None, "idempotency_key": None,
              "wait": False}
    run(handler, "submit", **common, run_at="2026-12-24T18:00:00+01:00", delay=None)
    run(handler, "submit", **common, run_at=None, delay=90.0)
    assert sent == [{"title": "x", "run_at": "2026-12-24T18:00:00+01:00"},
                    {"title": "x", "delay_seconds": 90.0}]


SCHEDULED = {"task_id": TASK_ID, "status": "new", "state": "scheduled", "since": AT,
             "detail": "It is scheduled to start at 2026-11-28 13:00:00 UTC.",
             "facts": {"run_at": "2026-11-28T13:00:00Z"}}


def one_task(diagnosis: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    task = {**a_task(), "id": TASK_ID, "run_at": "2026-11-28T13:00:00Z"}
    answers = {f"/tasks/{TASK_ID}": httpx.Response(200, json=task),
               f"/tasks/{TASK_ID}/history": httpx.Response(200, json=[
                   {"from_status": None, "to_status": "new", "at": AT, "attempt": 0,
                    "worker": None, "reason": None, "actor": None}]),
               f"/tasks/{TASK_ID}/diagnosis": diagnosis}
    return lambda request: answers[request.url.path]


def test_show_says_why_the_task_waits_and_when_it_may_start() -> None:
    status, lines = run(one_task(httpx.Response(200, json=SCHEDULED)), "show", id=TASK_ID)
    assert status == 0
    assert lines[2:4] == ["  status    new", "  diagnosis scheduled  It is scheduled to start "
                          "at 2026-11-28 13:00:00 UTC."]
    run_at = next(line for line in lines if line.startswith("  run at"))
    local = moment("2026-11-28T13:00:00Z")
    assert run_at.startswith(f"  run at    {local:%Y-%m-%d %H:%M:%S}  ")
    assert lines.index(run_at) == lines.index(next(
        line for line in lines if line.startswith("  created"))) + 1


def test_show_in_json_holds_the_diagnosis() -> None:
    _, lines = run(one_task(httpx.Response(200, json=SCHEDULED)), "show", as_json=True,
                   id=TASK_ID)
    shown = json.loads(lines[0])
    assert shown["diagnosis"] == SCHEDULED and shown["run_at"] == "2026-11-28T13:00:00Z"
    assert len(shown["history"]) == 1


def test_show_without_a_diagnosis_still_shows_the_task_and_says_why_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    down = httpx.Response(503, json={"title": "Unavailable", "status": 503,
                                     "detail": "broker: connection refused"})
    status, lines = run(one_task(down), "show", id=TASK_ID)
    assert status == 0 and lines[2] == "  status    new"
    assert not any("diagnosis" in line for line in lines)
    assert capsys.readouterr().err == "tasks: no diagnosis: broker: connection refused\n"
    _, lines = run(one_task(down), "show", as_json=True, id=TASK_ID)
    assert json.loads(lines[0])["diagnosis"] is None
