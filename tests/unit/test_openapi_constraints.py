"""What fuzzing found the document allowing and the service refusing: each is now said in the
document, so that a schema-valid request is never answered 400 (regressions of two cases)."""

from __future__ import annotations

import re
from typing import Any

from tests.unit.http_client import assert_problem, serving

ZEROS = "0" * 200


def _operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method]
    return operation


async def test_the_cursor_s_pattern_refuses_what_the_service_refuses() -> None:
    async with serving() as (client, _):
        document = (await client.get("/docs/openapi.json")).json()
        [cursor] = [p for p in _operation(document, "/tasks", "get")["parameters"]
                    if p["name"] == "cursor"]
        pattern = cursor["schema"].get("pattern") or next(
            o["pattern"] for o in cursor["schema"]["oneOf"] if "pattern" in o)
        assert re.search(pattern, ZEROS) is None  # the document no longer allows it
        assert_problem(await client.get("/tasks", params={"cursor": ZEROS}), 400)
        await client.post("/tasks", json={"title": "a"})
        await client.post("/tasks", json={"title": "b"})
        page = (await client.get("/tasks", params={"limit": 1})).json()
        assert re.search(pattern, page["next_cursor"])  # what it makes, it allows
        assert (await client.get("/tasks", params={"cursor": page["next_cursor"]})
                ).status_code == 200


async def test_without_a_retention_the_document_requires_a_prune_s_age() -> None:
    async with serving() as (client, _):  # TASKS_RETENTION_DAYS unset
        document = (await client.get("/docs/openapi.json")).json()
        body = _operation(document, "/maintenance/prune", "post")["requestBody"]
        assert body["required"] is True
        schema = body["content"]["application/json"]["schema"]
        assert schema["required"] == ["older_than_days"] and schema["type"] == "object"
        answer = await client.post("/maintenance/prune", content=b"null",
                                   headers={"content-type": "application/json"})
        assert_problem(answer, 400)


async def test_with_a_retention_the_prune_body_may_be_left_out() -> None:
    async with serving(retention_days=30) as (client, _):
        document = (await client.get("/docs/openapi.json")).json()
        assert _operation(document, "/maintenance/prune", "post")["requestBody"].get(
            "required") is not True
        answer = await client.post("/maintenance/prune", content=b"null",
                                   headers={"content-type": "application/json"})
        assert answer.status_code == 200, answer.text


async def test_a_delay_and_a_start_time_together_are_refused_as_the_document_says() -> None:
    async with serving() as (client, _):
        document = (await client.get("/docs/openapi.json")).json()
        task_in = document["components"]["schemas"]["TaskIn"]
        assert task_in["not"] == {"required": ["run_at", "delay_seconds"]}
        assert task_in["properties"]["delay_seconds"]["minimum"] == 0
        both = {"title": "t", "run_at": "2030-01-01T00:00:00Z", "delay_seconds": 5}
        assert_problem(await client.post("/tasks", json=both), 400)
        naive = {"title": "t", "run_at": "2030-01-01T00:00:00"}
        assert_problem(await client.post("/tasks", json=naive), 400)


async def test_a_start_time_with_any_offset_rfc_3339_allows_is_taken_as_its_instant() -> None:
    """Found by the 10-minute fuzz: PostgreSQL refuses offsets past 15:59, RFC 3339 (and the
    pattern) allow up to 23:59; the service stores the same instant in UTC."""
    async with serving() as (client, _):
        answer = await client.post("/tasks", json={"title": "t",
                                                   "run_at": "2057-10-29T22:04:41+22:37"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["run_at"] == "2057-10-28T23:27:41Z"
