"""The Litestar app on in-memory adapters, driven in-process, and checks on problem answers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from application.ports import HealthProbe
from entrypoints.container import Container, build_container, init_resources, use_memory
from entrypoints.http.app import create_app
from entrypoints.settings import Settings

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TASK_FIELDS = {
    "id", "title", "description", "payload", "status", "attempts", "error", "source",
    "created_at", "updated_at", "started_at", "finished_at", "run_at",
}


@asynccontextmanager
async def serving(
    probes: Sequence[HealthProbe] | None = None, **settings: Any
) -> AsyncIterator[tuple[AsyncTestClient[Any], Container]]:
    container = build_container(Settings(**settings))
    use_memory(container)
    if probes is not None:
        container.probes.override(providers.Object(list(probes)))
    await init_resources(container)
    async with AsyncTestClient(create_app(container)) as client:
        yield client, container


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 answer with this status, and no internals in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in response.text
    return body
