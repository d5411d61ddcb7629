"""Serving the HTTP app with uvicorn, in one process or several, each building its own app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from litestar import Litestar
from uvicorn.supervisors import Multiprocess

from entrypoints.container import Container, build_container, use_memory
from entrypoints.http.app import create_app
from entrypoints.lifecycle import Roles, running
from entrypoints.logging import configure_logging
from entrypoints.metrics import process_metrics, shared_across_processes
from entrypoints.settings import Settings
from entrypoints.tracing import enable_tracing


def build_app(settings: Settings, roles: Roles, in_memory: bool = False) -> Litestar:
    """What each API process runs: called in that process (after uvicorn spawned it)."""
    configure_logging(settings.log_format, settings.log_level)
    container = build_container(settings)
    if in_memory:
        use_memory(container)
    enable_tracing(container, "tasks-api")
    return create_app(container, [process_metrics, functools.partial(_lifespan, container, roles)])


@contextlib.asynccontextmanager
async def _lifespan(container: Container, roles: Roles, app: Litestar) -> AsyncIterator[None]:
    async with _stopping_on_signal(container.stopping()), running(container, roles):
        yield


@contextlib.asynccontextmanager
async def _stopping_on_signal(stopping: asyncio.Event) -> AsyncIterator[None]:
    """Set `stopping` as soon as SIGTERM or SIGINT arrives, before uvicorn waits for open
    connections: event streams end then, instead of holding the shutdown for its whole grace
    period. uvicorn has installed its own handlers by now; each is chained, not replaced."""
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}

    def chained(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(stopping.set)
        handler = previous.get(signal.Signals(signum))
        if callable(handler):
            handler(signum, frame)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, chained)
    except ValueError:  # not the main thread (an in-process test server): nothing to chain
        previous.clear()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(settings: Settings, app: Callable[[], Litestar], workers: int) -> bool:
    """uvicorn.run, but taking an app factory that is not an import string (so that the
    settings parsed once here reach every process as they are, flags included). False if the
    server could not start (the port is taken, say)."""
    config = uvicorn.Config(
        app, factory=True, host=settings.http_host, port=settings.http_port, workers=workers,
        log_config=None, access_log=False, server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        timeout_worker_healthcheck=60,  # importing the app takes seconds on a loaded box
    )
    with shared_across_processes(workers):
        if workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return True
        server = uvicorn.Server(config)
        server.run()
        return server.started
