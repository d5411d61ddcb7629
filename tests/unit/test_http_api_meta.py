"""Health endpoints, the OpenAPI document and the problem shape of routing errors."""

from __future__ import annotations

from typing import Any

from application.ports import HealthProbe
from tests.unit.fakes import DownProbe, OkProbe
from tests.unit.http_client import assert_problem, serving

PROBLEM = "application/problem+json"


async def test_live_is_200_while_the_process_runs() -> None:
    async with serving() as (client, _):
        response = await client.get("/health/live")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


async def test_ready_is_200_on_in_memory_adapters() -> None:
    async with serving() as (client, _):
        response = await client.get("/health/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


async def test_ready_says_which_server_a_dependency_answered_from() -> None:
    probes: list[HealthProbe] = [OkProbe("10.0.0.6:5432")]
    async with serving(probes=probes) as (client, _):
        response = await client.get("/health/ready")
        assert response.json() == {"status": "ok", "checks": {"database": "ok"},
                                   "servers": {"database": "10.0.0.6:5432"}}


async def test_ready_is_a_503_problem_naming_what_is_down() -> None:
    probes: list[HealthProbe] = [OkProbe(), DownProbe("broker", "connection refused")]
    async with serving(probes=probes) as (client, _):
        body = assert_problem(await client.get("/health/ready"), 503)
        assert "broker" in body["detail"]
        assert "connection refused" in body["detail"]
        assert "database" not in body["detail"]


async def test_an_unknown_path_and_a_wrong_method_are_problems() -> None:
    async with serving() as (client, _):
        assert_problem(await client.get("/nowhere"), 404)
        assert_problem(await client.delete("/tasks"), 405)


async def test_swagger_ui_is_served_at_docs() -> None:
    async with serving() as (client, _):
        response = await client.get("/docs")
        assert response.status_code == 200
        assert "swagger" in response.text.lower()


async def openapi() -> dict[str, Any]:
    async with serving() as (client, _):
        response = await client.get("/docs/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document


async def test_the_openapi_document_lists_every_route() -> None:
    paths = (await openapi())["paths"]
    assert {"/tasks", "/tasks/{task_id}", "/tasks/{task_id}/history", "/health/live",
            "/health/ready"} <= set(paths)
    assert {"get", "post"} <= set(paths["/tasks"])


async def test_the_openapi_document_describes_the_answers_of_post_tasks() -> None:
    responses = (await openapi())["paths"]["/tasks"]["post"]["responses"]
    assert "Location" in responses["201"]["headers"]
    assert "application/json" in responses["201"]["content"]
    for code in ("400", "409", "413", "503"):
        assert PROBLEM in responses[code]["content"], code
