"""Litestar application factory: routes, DI from the container, problem handlers, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.di import Provide
from litestar.exceptions import SerializationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Server

from application.telemetry import NO_TRACING
from entrypoints.container import Container
from entrypoints.http.access import (
    SECURITY_SCHEMES,
    document_open_access,
    make_guard,
    rate_limit,
)
from entrypoints.http.asyncapi import ROUTES as ASYNCAPI_ROUTES
from entrypoints.http.deadletters import ROUTES as DEAD_LETTER_ROUTES
from entrypoints.http.dispatch import ROUTES as DISPATCH_ROUTES
from entrypoints.http.docs import document_body_rules
from entrypoints.http.errors import HANDLERS
from entrypoints.http.events import ROUTES as EVENT_ROUTES
from entrypoints.http.maintenance import ROUTES as MAINTENANCE_ROUTES
from entrypoints.http.maintenance import document_prune_body
from entrypoints.http.metrics import ROUTES as METRICS_ROUTES
from entrypoints.http.metrics import HttpMetrics
from entrypoints.http.operator import ROUTES as OPERATOR_ROUTES
from entrypoints.http.routes import ROUTES
from entrypoints.http.static import static_files, swagger_ui
from entrypoints.http.stats import ROUTES as STATS_ROUTES
from entrypoints.http.tracing import ServerSpans
from entrypoints.http.ui import dashboard

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def _from(provider: Any) -> Provide:
    """A Litestar dependency that pulls a use case from the container."""

    def dependency() -> Any:
        return provider()

    return Provide(dependency, sync_to_thread=False, use_cache=True)


class JsonRequest(Request[Any, Any, Any]):
    """Litestar's request, with every way a JSON body can fail to decode reported as such.

    Litestar turns msgspec's DecodeError into a 400, but a body that is not UTF-8 raises
    UnicodeDecodeError and one nested deeper than the decoder's recursion limit raises
    RecursionError; both would be 500s. SerializationException is what Litestar maps to a 400.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError as exc:
            raise SerializationException(
                "JSON is malformed: text is not valid UTF-8") from exc
        except RecursionError as exc:
            raise SerializationException("JSON is malformed: nested too deeply") from exc


def create_app(container: Container, lifespan: list[Lifespan] | None = None) -> Litestar:
    settings = container.settings()
    keys = settings.keys()
    tracer = container.tracer()
    app = Litestar(
        route_handlers=[*ROUTES, *EVENT_ROUTES, *OPERATOR_ROUTES, *DISPATCH_ROUTES, *STATS_ROUTES,
                        *MAINTENANCE_ROUTES, *DEAD_LETTER_ROUTES, *METRICS_ROUTES,
                        *ASYNCAPI_ROUTES, static_files(), *dashboard(keys)],
        dependencies={
            "create": _from(container.create_task),
            "create_many": _from(container.create_tasks),
            "get_one": _from(container.get_task),
            "history": _from(container.get_history),
            "list_all": _from(container.list_tasks),
            "readiness": _from(container.readiness),
            "retry": _from(container.retry_task),
            "cancel": _from(container.cancel_task),
            "watch": _from(container.watch),
            "counts": _from(container.get_counts),
            "throughput": _from(container.throughput),
            "prune_tasks": _from(container.prune_tasks),
            "settings": _from(container.settings),
            "amqp": _from(container.broker),
            "list_dead": _from(container.list_dead_letters),
            "replay": _from(container.replay_dead_letters),
            "gauges": _from(container.read_gauges),
            "read_dispatch": _from(container.read_dispatch),
            "switch_dispatch": _from(container.switch_dispatch),
            "diagnose": _from(container.diagnose),
            "dispatch_queue": _from(container.dispatch_queue),
        },
        guards=[make_guard(keys)] if keys else [],  # none without keys: a call copies the handler
        middleware=[HttpMetrics(container.metrics()),  # first: it sees what the others refuse
                    *([ServerSpans(tracer)] if tracer is not NO_TRACING else []),
                    *([rate_limit(settings.rate_limit_per_second, keys)]
                      if settings.rate_limit_per_second else [])],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        request_class=JsonRequest,
        lifespan=lifespan or [],
        openapi_config=OpenAPIConfig(
            title="Tasks service",
            version="1.0.0",
            description=(
                "Create tasks over HTTP or AMQP (`tasks.create`); workers take each one "
                "`new` → `in_progress` → `completed` | `error`. Errors are RFC 9457 problem "
                "details (`application/problem+json`), including those no single operation "
                "lists: an unknown path is a 404, a method a path does not have is a 405 with "
                "`Allow`."
            ),
            path="/docs",
            components=SECURITY_SCHEMES,
            render_plugins=[swagger_ui()],
            servers=[Server(url="/")],
            use_handler_docstrings=False,
        ),
        before_request=_bind_request,
        debug=False,
        logging_config=None,  # structlog is configured by the entry point
    )
    if not keys:
        document_open_access(app.openapi_schema)
    document_body_rules(app.openapi_schema)
    document_prune_body(app.openapi_schema, settings.retention_days)
    return app


async def _bind_request(request: Request[Any, Any, Any]) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(method=request.method, path=request.url.path)
