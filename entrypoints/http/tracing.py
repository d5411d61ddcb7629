"""The server span of each HTTP request, in which its handler runs (installed only when
tracing is on)."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.queues import TRACE_HEADER
from application.telemetry import Tracer
from entrypoints.http.metrics import route_of

_HEADER = TRACE_HEADER.encode()


class ServerSpans(ASGIMiddleware):
    """`POST /tasks` and the like, continuing the caller's `traceparent` header when it sends
    one. Health checks, scrapes, the documents and static files make no traces."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = (r"^/health/", r"^/metrics$", r"^/docs", r"^/static/", r"^/ui")

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method, route = str(scope.get("method")), route_of(scope)
        parent = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER), None)
        answered: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        with self._tracer.span(f"{method} {route}", parent=parent, kind="server", attributes={
                "http.request.method": method, "http.route": route,
                "url.path": scope["path"]}) as span:
            try:
                await next_app(scope, receive, sending)
            finally:
                if answered:
                    span.set("http.response.status_code", answered[0])
