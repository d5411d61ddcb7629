"""The one table from errors to RFC 9457 problem details, used by HTTP and AMQP replies."""

from __future__ import annotations

import msgspec

from domain.errors import (
    DomainError,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    ServiceUnavailable,
    TaskNotFound,
)
from entrypoints.wire import Problem

#: error class -> (HTTP status, title). The first matching class wins.
TABLE: list[tuple[type[BaseException], int, str]] = [
    (TaskNotFound, 404, "Task not found"),
    (IdempotencyConflict, 409, "Idempotency key reused"),
    (InvalidTransition, 409, "Status change not allowed"),
    (InvalidInput, 400, "Invalid request"),
    (msgspec.ValidationError, 400, "Invalid request"),
    (msgspec.DecodeError, 400, "Malformed JSON"),
    (ServiceUnavailable, 503, "Service unavailable"),
    (DomainError, 400, "Invalid request"),
]


#: Titles for the HTTP-level refusals Litestar raises itself (routing, body size, parsing).
HTTP_TITLES: dict[int, str] = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def problem_for(exc: BaseException, instance: str | None = None) -> Problem:
    for cls, status, title in TABLE:
        if isinstance(exc, cls):
            return Problem(title=title, status=status, detail=str(exc) or title, instance=instance)
    return Problem(title="Internal error", status=500,
                   detail="the server failed to handle the request", instance=instance)
