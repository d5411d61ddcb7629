"""OpenAPI fragments: the problem responses every operation may give."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from entrypoints.wire import Problem

PROBLEM = "application/problem+json"


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type=PROBLEM,
                        generate_examples=False)


COMMON = {
    400: problem("The request is malformed: bad parameter, header or body."),
    503: problem("PostgreSQL is not reachable right now; retry after the `Retry-After` delay."),
    500: problem("Unexpected server error (never expected; reported with no internals)."),
}


def responses(**extra: str) -> dict[int, ResponseSpec]:
    """COMMON plus e.g. `404="…"` / `409="…"` / `413="…"`."""
    out = dict(COMMON)
    for code, text in extra.items():
        out[int(code.removeprefix("r"))] = problem(text)
    return out
