"""The task commands on an in-process transport: pages, ids on stdout, exit status by outcome."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable

import httpx

from entrypoints.client import commands
from entrypoints.client.http import Service
from entrypoints.client.output import Out

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
                        idempotency_key="order-17", wait=False)
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
