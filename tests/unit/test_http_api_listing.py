"""The HTTP contract of GET /tasks: filters, limits, opaque cursors and complete walks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from application.process import ProcessTask
from entrypoints.container import Container
from tests.unit.fakes import FixedProcessor
from tests.unit.http_client import TASK_FIELDS, assert_problem, serving

Client = AsyncTestClient[Any]


@pytest.fixture
async def served() -> AsyncIterator[tuple[Client, Container]]:
    async with serving() as pair:
        yield pair


@pytest.fixture
def client(served: tuple[Client, Container]) -> Client:
    return served[0]


async def post(client: Client, count: int, prefix: str = "task") -> list[str]:
    ids = []
    for n in range(count):
        response = await client.post("/tasks", json={"title": f"{prefix} {n}"})
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


async def test_listing_returns_items_newest_first_and_no_cursor_at_the_end(
    client: Client,
) -> None:
    ids = await post(client, 3)
    response = await client.get("/tasks")
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"items", "next_cursor"}
    assert [t["id"] for t in page["items"]] == ids[::-1]
    assert all(set(t) == TASK_FIELDS for t in page["items"])
    assert page["next_cursor"] is None


async def test_status_may_repeat_to_mean_any_of(served: tuple[Client, Container]) -> None:
    client, container = served
    done, failed, waiting = await post(client, 3)
    for task_id, result in ((done, None), (failed, "no")):
        process = ProcessTask(container.worker_store(), FixedProcessor(result),
                              container.clock(), "w1", timedelta(seconds=30),
                              container.stops())
        await process(uuid.UUID(task_id))

    async def listed(query: str) -> set[str]:
        response = await client.get(f"/tasks?{query}")
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert await listed("status=completed&status=error") == {done, failed}
    assert await listed("status=new") == {waiting}
    assert await listed("status=in_progress") == set()
    assert await listed("") == {done, failed, waiting}


@pytest.mark.parametrize("query", ["status=bogus", "status=new&status=NEW", "status="])
async def test_an_unknown_status_is_a_400_problem(client: Client, query: str) -> None:
    assert_problem(await client.get(f"/tasks?{query}"), 400)


@pytest.mark.parametrize("limit", ["0", "501", "-1", "abc", "1.5", ""])
async def test_a_limit_outside_1_to_500_or_not_a_number_is_a_400_problem(
    client: Client, limit: str
) -> None:
    assert_problem(await client.get(f"/tasks?limit={limit}"), 400)


@pytest.mark.parametrize("limit", [1, 500])
async def test_the_limit_bounds_are_accepted(client: Client, limit: int) -> None:
    await post(client, 2)
    page = (await client.get(f"/tasks?limit={limit}")).json()
    assert len(page["items"]) == min(limit, 2)


@pytest.mark.parametrize("cursor", ["garbage", "e30", "WzEsMiwzXQ", "%00", "x" * 1000])
async def test_a_cursor_the_service_did_not_make_is_a_400_problem(
    client: Client, cursor: str
) -> None:
    await post(client, 1)
    assert_problem(await client.get("/tasks", params={"cursor": cursor}), 400)


async def test_walking_next_cursor_visits_every_task_once_while_tasks_arrive(
    client: Client,
) -> None:
    existing = await post(client, 9)
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    for _ in range(20):
        response = await client.get("/tasks", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [t["id"] for t in page["items"]]
        await post(client, 2, prefix="newcomer")
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == existing[::-1]
