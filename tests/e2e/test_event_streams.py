"""Event streams on real processes: any process's change reaches every stream within a second,
resuming skips and repeats nothing, bad input is a problem, and SIGTERM ends open streams."""

from __future__ import annotations

import asyncio
import time

import httpx
import psycopg

from tests.support.processes import Stack, eventually
from tests.support.sse import open_stream

FINAL = {"completed", "error"}


def start(stack: Stack, **worker: str) -> None:
    stack.migrate()
    stack.api()
    stack.worker(**worker)


async def test_one_task_stream_follows_it_from_creation_to_the_end_then_closes(
    stack: Stack,
) -> None:
    start(stack, TASKS_PROCESSING_MIN_SECONDS="1", TASKS_PROCESSING_MAX_SECONDS="1.5")
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        task = (await http.post("/tasks", json={"title": "follow me"})).json()
        async with open_stream(stack.base_url, f"/tasks/{task['id']}/events") as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = await stream.until(3, timeout=20)
            await asyncio.wait_for(stream.ended.wait(), 5)  # the server ends it
        history = (await http.get(f"/tasks/{task['id']}/history")).json()
        final = (await http.get(f"/tasks/{task['id']}")).json()
    assert [(e.data["from_status"], e.data["to_status"]) for e in events] == [
        (h["from_status"], h["to_status"]) for h in history]
    assert all(e.event == "transition" for e in events)
    assert events[-1].data["task"] == final
    assert [e.id for e in events] == sorted(e.id for e in events)  # increasing ids


async def test_a_change_made_by_the_worker_reaches_an_api_stream_within_a_second(
    stack: Stack,
) -> None:
    """The worker is another process: its claim and finish reach the API's open stream through
    PostgreSQL, timed from the commit the history row records."""
    start(stack, TASKS_PROCESSING_MIN_SECONDS="0.5", TASKS_PROCESSING_MAX_SECONDS="0.5")
    async with open_stream(stack.base_url, "/events") as stream, \
            httpx.AsyncClient(base_url=stack.base_url) as http:
        await asyncio.sleep(0.3)
        tasks = [(await http.post("/tasks", json={"title": f"t{n}"})).json() for n in range(5)]
        await stream.until(15, timeout=20)
    mine = {t["id"] for t in tasks}
    seen = [e for e in stream.events if e.data["task_id"] in mine]
    assert sorted((e.data["task_id"], e.data["to_status"]) for e in seen) == sorted(
        (i, s) for i in mine for s in ("new", "in_progress", seen_final(seen, i)))
    for event in seen:  # wall-clock delay from the change's own time to its arrival here
        delay = time.time() - (time.monotonic() - event.at) - _epoch(event.data["at"])
        assert delay < 1.0, (event.data, delay)


def seen_final(seen: list, task_id: str) -> str:  # type: ignore[type-arg]
    return next(e.data["to_status"] for e in seen
                if e.data["task_id"] == task_id and e.data["to_status"] in FINAL)


def _epoch(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


async def test_reconnecting_with_last_event_id_skips_and_repeats_nothing(
    stack: Stack, db: psycopg.Connection,
) -> None:
    start(stack)
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        async with open_stream(stack.base_url, "/events") as first:
            await asyncio.sleep(0.3)
            for n in range(10):
                await http.post("/tasks", json={"title": f"a{n}"})
            got = await first.until(12)
        cut = got[11].id
        # meanwhile more happens: the first ten finish, ten more are created
        for n in range(10):
            await http.post("/tasks", json={"title": f"b{n}"})
        await eventually(lambda: db.execute("SELECT count(*) FROM tasks WHERE status NOT IN "
                                            "('completed','error')").fetchone()[0] == 0,
                         30, "everything to finish")
        async with open_stream(stack.base_url, "/events",
                               headers={"Last-Event-ID": str(cut)}) as resumed:
            rest = await resumed.until(60 - 12, timeout=20)
            await asyncio.sleep(0.3)
    ids = [e.id for e in got[:12]] + [e.id for e in resumed.events]
    assert len(ids) == len(set(ids)) == 60 == db.execute(
        "SELECT count(*) FROM task_history").fetchone()[0]
    assert ids == sorted(ids)
    assert rest[0].id > cut


async def test_bad_input_is_a_problem_before_any_stream_starts(stack: Stack) -> None:
    start(stack)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=5) as http:
        unknown = await http.get("/tasks/00000000-0000-0000-0000-000000000000/events")
        assert (unknown.status_code, unknown.headers["content-type"]) == (
            404, "application/problem+json")
        task = (await http.post("/tasks", json={"title": "t"})).json()
        for path, headers, params in [
            (f"/tasks/{task['id']}/events", {"Last-Event-ID": "not-an-id"}, None),
            ("/events", {"Last-Event-ID": "12"}, None),
            ("/events", None, {"status": "lost"}),
        ]:
            answer = await http.get(path, headers=headers, params=params)
            assert (answer.status_code, answer.headers["content-type"]) == (
                400, "application/problem+json"), (path, answer.text)


async def test_sigterm_ends_open_streams_at_once_instead_of_holding_the_shutdown(
    stack: Stack,
) -> None:
    stack.migrate()
    api = stack.api(TASKS_SHUTDOWN_GRACE_SECONDS="20")
    async with open_stream(stack.base_url, "/events") as a, \
            open_stream(stack.base_url, "/events?status=completed") as b:
        await asyncio.sleep(0.3)
        began = time.monotonic()
        api.signal(15)
        await asyncio.wait_for(asyncio.gather(a.ended.wait(), b.ended.wait()), 5)
        # uvicorn re-raises the signal once shut down: terminated by SIGTERM, cleanly
        assert await asyncio.to_thread(api.popen.wait, 10) in (0, -15)
        assert time.monotonic() - began < 5
