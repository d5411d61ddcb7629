"""GET /docs/asyncapi.json and the page that renders it, /docs/asyncapi (open, and offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency

from adapters.rabbitmq.broker import RabbitMQ
from entrypoints.asyncapi import document
from entrypoints.settings import Settings


@get("/docs/asyncapi.json", include_in_schema=False)
async def asyncapi_json(request: Request[Any, Any, Any], settings: NamedDependency[Settings],
                        amqp: NamedDependency[object]) -> Response[bytes]:
    """Made once per app, from the same schemas as the OpenAPI document and the subscribers
    and publishers of this process's RabbitMQ adapter (`tasks dev` has none: there, an
    adapter that never connects describes the same endpoints)."""
    body = request.app.state.get("asyncapi_json")
    if body is None:
        schemas = request.app.openapi_schema.to_schema()["components"]["schemas"]
        adapter = amqp if isinstance(amqp, RabbitMQ) else RabbitMQ(settings.rabbitmq_urls())
        broker = adapter.faststream
        body = msgspec.json.encode(document(schemas, broker))
        request.app.state["asyncapi_json"] = body
    return Response(body, media_type="application/json")


@get("/docs/asyncapi", include_in_schema=False, sync_to_thread=False)
def asyncapi_page() -> Response[bytes]:
    return Response(PAGE, media_type="text/html")


#: Shipped inside the package, next to this module.
PAGE = (Path(__file__).parent / "pages" / "asyncapi.html").read_bytes()

ROUTES = [asyncapi_json, asyncapi_page]
