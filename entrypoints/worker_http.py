"""The worker's own small HTTP server: GET /metrics, /health/live and /health/ready.

Built on asyncio.start_server with a few lines of HTTP/1.1 rather than on uvicorn and Litestar:
three read-only routes, asked by Prometheus and by a container healthcheck, need no framework,
and an in-process uvicorn would install its own SIGTERM/SIGINT handlers over the worker's. One
request per connection (`Connection: close`); a client gets a few seconds to send its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

import msgspec
import structlog

from adapters.telemetry.prometheus import MEDIA_TYPE, scrape
from application.health import CheckReadiness
from domain.errors import ServiceUnavailable
from entrypoints.problems import problem_for
from entrypoints.wire import Problem, Readiness

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode
#: How long a client may take to send its request line and headers.
READ_TIMEOUT = 5.0
MAX_HEADER_LINES = 100
Answer = tuple[int, str, bytes]
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request",
           503: "Service Unavailable"}


@contextlib.asynccontextmanager
async def worker_http(readiness: CheckReadiness, host: str, port: int) -> AsyncIterator[None]:
    """Serves while the block runs. Port 0 means no server; a port that is taken (a second
    worker on the same machine) is one warning line, and the worker runs without it."""
    if port == 0:
        yield
        return
    try:
        server = await asyncio.start_server(functools.partial(_connection, readiness), host, port)
    except OSError as exc:
        log.warning("worker_http_unavailable", host=host, port=port, error=str(exc),
                    effect="no /metrics or /health on this worker; set TASKS_WORKER_HTTP_PORT "
                    "to a free port (0 for none)")
        yield
        return
    log.info("worker_http_listening", host=host, port=port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def _connection(readiness: CheckReadiness, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    try:
        try:
            method, path = await asyncio.wait_for(_request(reader), READ_TIMEOUT)
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return  # not HTTP, or too slow: nothing useful to answer
        status, media_type, body = await _answer(readiness, method, path)
        head = [f"HTTP/1.1 {status} {REASONS.get(status, '')}", f"Content-Type: {media_type}",
                f"Content-Length: {len(body)}", "Connection: close"]
        if status == 405:
            head.append("Allow: GET, HEAD")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if method != "HEAD":
            writer.write(body)
        await writer.drain()
    except ConnectionError:
        pass  # the client left
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path of the request line; the headers are read and ignored."""
    method, target, version = (await reader.readuntil(b"\r\n")).decode("latin-1").split()
    if not version.startswith("HTTP/1."):
        raise ValueError(version)
    for _ in range(MAX_HEADER_LINES):
        if await reader.readuntil(b"\r\n") == b"\r\n":
            return method, target.split("?", 1)[0]
    raise ValueError("too many header lines")


async def _answer(readiness: CheckReadiness, method: str, path: str) -> Answer:
    route = ROUTES.get(path)
    if route is None:
        return _problem(404, f"no route {path}: this worker serves {', '.join(ROUTES)}")
    if method not in ("GET", "HEAD"):
        return _problem(405, f"{method} is not allowed here")
    return await route(readiness)


async def _metrics(readiness: CheckReadiness) -> Answer:
    return 200, f"{MEDIA_TYPE}; charset=utf-8", scrape()


async def _live(readiness: CheckReadiness) -> Answer:
    return 200, "application/json", _encode(Readiness(status="ok", checks={}))


async def _ready(readiness: CheckReadiness) -> Answer:
    """The API's readiness: PostgreSQL (migrated) and RabbitMQ reachable."""
    checks = await readiness()
    down = {name: why for name, why in checks.items() if why != "ok"}
    if down:
        problem = problem_for(ServiceUnavailable(
            "; ".join(f"{name}: {why}" for name, why in down.items())), "/health/ready")
        return 503, "application/problem+json", _encode(problem)
    return 200, "application/json", _encode(Readiness(status="ok", checks=checks,
                                                      servers=dict(readiness.servers)))


def _problem(status: int, detail: str) -> Answer:
    problem = Problem(title=REASONS[status], status=status, detail=detail)
    return status, "application/problem+json", _encode(problem)


ROUTES = {"/metrics": _metrics, "/health/live": _live, "/health/ready": _ready}
