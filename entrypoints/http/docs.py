"""OpenAPI fragments: the problem responses every operation may give, and their headers.

Litestar's `ResponseSpec` cannot carry headers, and a documentation-only `ResponseHeader` gets no
schema; `DocumentedOperation` (every handler's `operation_class`) fills both gaps in one place, so
that the document describes every answer exactly (a property-based run checks it against the
running service: tests/e2e/test_openapi_conformance.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema

from entrypoints.wire import Problem

PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 5


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type=PROBLEM,
                        generate_examples=False)


SERVER_ERROR = problem("Unexpected server error (never expected; reported with no internals).")
COMMON = {
    400: problem("The request is malformed: bad parameter, header or body."),
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


@dataclass
class DocumentedOperation(Operation):
    """An operation whose 503 answers carry `Retry-After`, and whose headers all have a schema."""

    def __post_init__(self) -> None:
        for code, response in (self.responses or {}).items():
            if not isinstance(response, OpenAPIResponse):
                continue
            if code == "503":
                response.headers = {**(response.headers or {}), "Retry-After": RETRY_AFTER}
            for name, header in (response.headers or {}).items():
                if isinstance(header, OpenAPIHeader) and header.schema is None:
                    header.schema = HEADER_SCHEMAS.get(name, Schema(type=OpenAPIType.STRING))
