"""GET /metrics, and the middleware that counts and times every HTTP request by route."""

from __future__ import annotations

import functools
import re
import time

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.telemetry.prometheus import MEDIA_TYPE, PrometheusMetrics, scrape
from application.gauges import ReadGauges


@get("/metrics", include_in_schema=False)
async def metrics(gauges: NamedDependency[ReadGauges]) -> Response[bytes]:
    """Open with API keys on (the Access contract) and not rate-limited (access.py)."""
    return Response(scrape(await gauges()), media_type=MEDIA_TYPE)


class HttpMetrics(ASGIMiddleware):
    """Counts each request by method, route template (`/tasks/{task_id}`: a bounded label,
    not the path) and status code, and times it to the start of its answer (an event stream
    is timed to its first byte, not over its life).

    Listed first, it runs outside every other middleware: a refusal raised by one of them (a
    rate-limit 429) is counted with its status, not as a 200. Paths that match no route never
    reach it."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, recorder: PrometheusMetrics) -> None:
        self._recorder = recorder

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        answered: list[int] = []
        seconds: float | None = None
        recorder = self._recorder

        async def sending(message: Message) -> None:
            nonlocal seconds
            if message["type"] == "http.response.start":
                answered.append(message["status"])
                seconds = time.perf_counter() - started
            await send(message)

        recorder.request_started()
        refused = 500
        try:
            await next_app(scope, receive, sending)
        except HTTPException as exc:
            refused = exc.status_code
            raise
        finally:
            recorder.request_done(
                str(scope.get("method")), route_of(scope),
                answered[0] if answered else refused,
                seconds if seconds is not None else time.perf_counter() - started)


def route_of(scope: Scope) -> str:
    """The matched route's template: a bounded label, unlike the path."""
    return _route(str(scope.get("path_template", "")))


@functools.lru_cache(maxsize=1024)
def _route(template: str) -> str:
    """The template without converters (`{task_id:uuid}` → `{task_id}`), should one be left."""
    return _CONVERTER.sub(r"{\1}", template)


_CONVERTER = re.compile(r"\{(\w+):[^}]*\}")


ROUTES = [metrics]
