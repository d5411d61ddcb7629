"""The worker's small HTTP server, on a real socket: metrics, liveness, readiness, and a port
that is already taken."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from structlog.testing import capture_logs

from application.health import CheckReadiness
from entrypoints.worker_http import worker_http
from tests.support.processes import free_port
from tests.unit.fakes import DownProbe, OkProbe


@pytest.fixture
async def served() -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    async with worker_http(CheckReadiness([OkProbe()]), "127.0.0.1", port), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        yield client


async def test_metrics_are_the_prometheus_text_of_this_process(
    served: httpx.AsyncClient,
) -> None:
    answer = await served.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "tasks_finished_total{" in answer.text
    assert "tasks_processing_seconds_bucket{" in answer.text


async def test_live_and_ready_answer_as_the_api_does(served: httpx.AsyncClient) -> None:
    live = await served.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok", "checks": {}})
    ready = await served.get("/health/ready?verbose=1")
    assert (ready.status_code, ready.json()) == (
        200, {"status": "ok", "checks": {"database": "ok"}})
    assert (await served.head("/health/live")).status_code == 200


async def test_readiness_is_a_503_problem_naming_what_is_down() -> None:
    port = free_port()
    probes = CheckReadiness([OkProbe(), DownProbe("broker", "broker unreachable")])
    async with worker_http(probes, "127.0.0.1", port), httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "broker: broker unreachable"


async def test_other_paths_and_methods_are_refused_with_problems(
    served: httpx.AsyncClient,
) -> None:
    missing = await served.get("/tasks")
    assert (missing.status_code, missing.headers["content-type"]) == (
        404, "application/problem+json")
    post = await served.post("/metrics")
    assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")


async def test_a_client_that_sends_garbage_gets_the_connection_closed(
    served: httpx.AsyncClient,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.base_url.port)
    writer.write(b"not http at all\r\n\r\n")
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    writer.close()
    assert (await served.get("/health/live")).status_code == 200


async def test_a_taken_port_is_one_warning_and_no_server() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with capture_logs() as logs:
            async with worker_http(CheckReadiness([OkProbe()]), "127.0.0.1", port):
                pass
    assert [e["event"] for e in logs] == ["worker_http_unavailable"]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["port"] == port


async def test_port_zero_serves_nothing() -> None:
    with capture_logs() as logs:
        async with worker_http(CheckReadiness([OkProbe()]), "127.0.0.1", 0):
            pass
    assert logs == []
