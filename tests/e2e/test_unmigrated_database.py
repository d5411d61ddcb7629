"""A new user's first wall: a database nobody migrated yet is a clear state, not a flood of 500s."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import psycopg

from tests.support.processes import Stack, eventually
from tests.support.watching import assert_clean, events, readiness_detail

RUN_MIGRATE = "not migrated (run tasks migrate)"
REQUEST_503 = "database not migrated (run tasks migrate)"


async def test_an_unmigrated_database_is_a_clear_state_until_tasks_migrate_runs(
    empty_database_url: str, rabbitmq_url: str, stacks: Callable[..., Stack]
) -> None:
    stack = stacks(empty_database_url, rabbitmq_url)
    api = stack.api(wait_ready=False)
    worker = stack.worker()
    stack.wait_http(api, "/health/live")

    assert await readiness_detail(stack, RUN_MIGRATE) == f"database: {RUN_MIGRATE}"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post("/tasks", json={"title": f"t{i}"}) for i in range(100)),
            *(http.get("/tasks") for _ in range(50)),
            *(http.get(f"/tasks/{uuid.uuid4()}") for _ in range(50)),
            *(http.get(f"/tasks/{uuid.uuid4()}/history") for _ in range(50)),
        )
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["detail"] == REQUEST_503
        assert "Traceback" not in answer.text
    await eventually(lambda: RUN_MIGRATE in worker.log(), 20, "the worker to say it")

    for proc in (api, worker):
        assert_clean(proc)
        said = proc.log().count("run tasks migrate")
        assert 1 <= said <= 8, f"{proc.name} said it {said} times:\n{proc.log()}"

    stack.migrate()  # and the same processes carry on, without a restart
    stack.wait_http(api, "/health/ready", timeout=20)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        created = await http.post("/tasks", json={"title": "after migrate"})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        async def finished() -> bool:
            status = (await http.get(f"/tasks/{task_id}")).json()["status"]
            return status in ("completed", "error")

        await eventually(finished, 30, "the worker to process a task after migrate")
    await eventually(lambda: any(e.get("event") == "process_ready" for e in events(worker)),
                     10, "the worker to say it is ready")


async def test_a_schema_newer_than_the_code_makes_the_api_unready(
    database_url: str, rabbitmq_url: str, stacks: Callable[..., Stack]
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES ('9999_newer_release')")
    stack = stacks(database_url, rabbitmq_url)
    api = stack.api(wait_ready=False)
    stack.wait_http(api, "/health/live")

    detail = await readiness_detail(stack, "newer than this code")
    assert detail.startswith("database: database schema is newer than this code (")
    assert detail.endswith("upgrade the service")
    assert_clean(api)
