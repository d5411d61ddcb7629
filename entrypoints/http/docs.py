"""OpenAPI fragments: the problem responses every operation may give, and their headers.

Litestar's `ResponseSpec` cannot carry headers, and a documentation-only `ResponseHeader` gets no
schema; `DocumentedOperation` (every handler's `operation_class`) fills both gaps in one place, so
that the document describes every answer exactly (a property-based run checks it against the
running service: tests/e2e/test_openapi_conformance.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import Parameter

from entrypoints.wire import Problem

PROBLEM = "application/problem+json"
#: The `{task_id}` path parameter of every task operation.
TaskId = Annotated[uuid.UUID, Parameter(description="The task's id (a UUID).")]
RETRY_AFTER_SECONDS = 5


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type=PROBLEM,
                        generate_examples=False)


SERVER_ERROR = problem("Unexpected server error (never expected; reported with no internals).")
COMMON = {
    400: problem("The request is malformed: bad parameter, header or body."),
    401: problem("API keys are on (TASKS_API_KEYS) and none, or an unknown one, was sent."),
    403: problem("The API key's scope is too small for this operation."),
    429: problem("Over TASKS_RATE_LIMIT_PER_SECOND for this key (or address); retry after "
                 "the `Retry-After` delay."),
    503: problem("PostgreSQL is not reachable right now; retry after the `Retry-After` delay."),
    500: SERVER_ERROR,
}


def responses(**extra: str) -> dict[int, ResponseSpec]:
    """COMMON plus e.g. `r404="…"` / `r409="…"` / `r413="…"`."""
    out = dict(COMMON)
    for code, text in extra.items():
        out[int(code.removeprefix("r"))] = problem(text)
    return out


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: The schema of every response header the service sends, by name.
HEADER_SCHEMAS = {
    "Location": Schema(type=OpenAPIType.STRING, pattern=f"^/tasks/{_UUID}$"),
    "Idempotent-Replayed": Schema(type=OpenAPIType.STRING, enum=["true"]),
    "Retry-After": Schema(type=OpenAPIType.STRING, pattern="^[0-9]+$",
                          examples=[str(RETRY_AFTER_SECONDS)]),
}
RETRY_AFTER = OpenAPIHeader(
    description="Seconds to wait before trying again.", required=True,
    schema=HEADER_SCHEMAS["Retry-After"],
)
#: Headers every answer with this status carries.
STATUS_HEADERS = {
    "401": {"WWW-Authenticate": OpenAPIHeader(
        description="`Bearer realm=\"tasks\"`.", required=True,
        schema=Schema(type=OpenAPIType.STRING, pattern="^Bearer"))},
    "429": {"Retry-After": RETRY_AFTER},
    "503": {"Retry-After": RETRY_AFTER},
}


@dataclass
class DocumentedOperation(Operation):
    """An operation whose 401, 429 and 503 answers carry their headers (`WWW-Authenticate`,
    `Retry-After`), whose headers all have a schema, and whose optional body is not required."""

    def __post_init__(self) -> None:
        body = self.request_body
        if isinstance(body, RequestBody) and _accepts_null(body):
            body.required = False  # `data: X | None = None`: the body may be left out
        for code, response in (self.responses or {}).items():
            if not isinstance(response, OpenAPIResponse):
                continue
            if code in STATUS_HEADERS:
                response.headers = {**(response.headers or {}), **STATUS_HEADERS[code]}
            for name, header in (response.headers or {}).items():
                if isinstance(header, OpenAPIHeader) and header.schema is None:
                    header.schema = HEADER_SCHEMAS.get(name, Schema(type=OpenAPIType.STRING))


#: Body fields that exclude each other, by component: the document says so (`not` both
#: required), so that no body it allows is refused.
EXCLUSIVE: dict[str, tuple[str, ...]] = {"TaskIn": ("run_at", "delay_seconds")}
#: Bounds of 0 that Litestar leaves out of a field's schema (it drops a falsy `ge` or `gt`):
#: component, field, and the Schema attribute that says it.
ZERO_BOUNDS: list[tuple[str, str, str]] = [("TaskIn", "delay_seconds", "minimum"),
                                           ("PruneIn", "older_than_days", "exclusive_minimum")]


def document_body_rules(document: OpenAPI) -> None:
    """What the wire types refuse that Litestar's schemas do not say (see the tables above)."""
    schemas = (document.components.schemas or {}) if document.components else {}
    for name, exclusive in EXCLUSIVE.items():
        schema = schemas.get(name)
        if isinstance(schema, Schema):
            schema.schema_not = Schema(required=list(exclusive))
    for name, field, bound in ZERO_BOUNDS:
        schema = schemas.get(name)
        prop = (schema.properties or {}).get(field) if isinstance(schema, Schema) else None
        if isinstance(prop, Schema):
            setattr(prop, bound, 0)


def _accepts_null(body: RequestBody) -> bool:
    for media in (body.content or {}).values():
        schema = media.schema
        if isinstance(schema, Schema) and any(
                isinstance(option, Schema) and option.type == OpenAPIType.NULL
                for option in schema.one_of or ()):
            return True
    return False


def inline_schema(kind: type) -> dict[str, Any]:
    """msgspec's JSON Schema of `kind` with every `$ref` replaced by its definition, for a
    place in the document that a `#/...` reference cannot point from (an SSE event's
    `contentSchema`)."""
    schema = msgspec.json.schema(kind)
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
                return {**target, **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
