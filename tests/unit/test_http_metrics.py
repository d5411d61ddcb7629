"""GET /metrics on the in-memory app: the contract's families, and every request counted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from application.gauges import ReadGauges
from application.process import ProcessTask
from application.stats import GetCounts
from entrypoints.container import Container
from tests.unit.fakes import FixedProcessor
from tests.unit.http_client import serving

Client = AsyncTestClient[Any]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
KEYS = "ops:admin:admin-secret-1"


async def scraped(client: Client) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples}


def requests(found: Samples, method: str, route: str, status: int) -> float:
    labels = (("method", method), ("route", route), ("status_code", str(status)))
    return found.get(("tasks_http_requests_total", labels), 0.0)


async def finish(container: Container, task_id: str, result: str | None) -> None:
    await ProcessTask(container.worker_store(), FixedProcessor(result), container.clock(),
                      "w1", timedelta(seconds=30), container.stops(),
                      metrics=container.metrics())(uuid.UUID(task_id))


async def test_a_scrape_shows_the_contract_families_with_values_that_add_up() -> None:
    async with serving() as (client, container):
        before = await scraped(client)
        ids = [(await client.post("/tasks", json={"title": f"t{i}"})).json()["id"]
               for i in range(3)]
        await finish(container, ids[0], None)
        await finish(container, ids[1], "no paper")
        after = await scraped(client)

    def grew(name: str, *labels: tuple[str, str]) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert grew("tasks_created_total", ("source", "api")) == 3
    assert grew("tasks_finished_total", ("status", "completed")) == 1
    assert grew("tasks_finished_total", ("status", "error")) == 1
    assert grew("tasks_queue_wait_seconds_count") == 2
    assert grew("tasks_processing_seconds_count") == 2
    assert {s: after[("tasks_by_status", (("status", s),))]
            for s in ("new", "in_progress", "completed", "error")} == {
        "new": 1, "in_progress": 0, "completed": 1, "error": 1}
    assert after[("tasks_oldest_new_age_seconds", ())] >= 0
    assert after[("tasks_outbox_pending", ())] == 3  # nothing relays in this test
    assert after[("tasks_dead_letters", (("queue", "tasks.create.dlq"),))] == 0
    assert after[("tasks_dead_letters", (("queue", "tasks.dispatch.dlq"),))] == 0


async def test_requests_are_counted_by_route_template_not_by_path() -> None:
    async with serving() as (client, _):
        before = await scraped(client)
        missing = f"/tasks/{uuid.uuid4()}"
        assert (await client.get(missing)).status_code == 404
        assert (await client.get(missing + "/history")).status_code == 404
        after = await scraped(client)
    for route in ("/tasks/{task_id}", "/tasks/{task_id}/history"):
        assert requests(after, "GET", route, 404) - requests(before, "GET", route, 404) == 1
    assert not [key for key in after if missing in str(key)]
    assert requests(after, "GET", "/metrics", 200) >= 1


async def test_with_api_keys_metrics_stay_open_and_refusals_are_counted_as_such() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        before = await scraped(client)
        assert (await client.post("/tasks", json={"title": "t"})).status_code == 401
        assert (await client.post("/tasks", json={"title": "t"},
                                  headers={"X-API-Key": "admin-secret-1"})).status_code == 201
        after = await scraped(client)
    assert requests(after, "POST", "/tasks", 401) - requests(before, "POST", "/tasks", 401) == 1
    assert requests(after, "POST", "/tasks", 201) - requests(before, "POST", "/tasks", 201) == 1


async def test_a_rate_limited_request_is_counted_as_429_and_scrapes_are_never_limited() -> None:
    async with serving(rate_limit_per_second=1) as (client, _):
        before = await scraped(client)
        answers = [(await client.get("/tasks")).status_code for _ in range(3)]
        for _ in range(3):
            await scraped(client)
        after = await scraped(client)
    assert answers.count(429) >= 1
    assert (requests(after, "GET", "/tasks", 429) - requests(before, "GET", "/tasks", 429)
            == answers.count(429))


class HangingDeadLetters:
    async def counts(self) -> dict[str, int]:
        await asyncio.sleep(60)
        return {}


async def test_a_source_that_hangs_is_left_out_after_its_timeout() -> None:
    async with serving() as (_, container):
        read = ReadGauges(GetCounts(container.uow, container.clock()), HangingDeadLetters(),  # type: ignore[arg-type]
                          timeout=0.05)
        gauges = await asyncio.wait_for(read(), 2)
    assert gauges.dead_letters is None
    assert gauges.counts is not None
