"""Exception handlers: every error leaves as application/problem+json, never as a stack trace."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from application.throttle import Throttle
from entrypoints.http.docs import PROBLEM, RETRY_AFTER_SECONDS
from entrypoints.problems import HTTP_TITLES, problem_for
from entrypoints.wire import Problem

log = structlog.get_logger(__name__)
#: Headers of Litestar's own refusals that the problem answer keeps.
KEPT_HEADERS = frozenset({"allow", "www-authenticate", "ratelimit-policy", "ratelimit-limit",
                          "ratelimit-remaining", "ratelimit-reset"})
#: a 503 answers every request alike while an outage lasts: logged once per interval and reason
_unavailable = Throttle(30.0)


def _respond(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(problem, status_code=problem.status, media_type=PROBLEM, headers=headers)


def on_http_error(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[Problem]:
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        detail = "; ".join(_explain(e) if isinstance(e, dict) else str(e) for e in exc.extra)
    if exc.status_code >= 500:  # Litestar's own failure (a dependency it could not resolve…)
        log.error("request_failed", path=request.url.path, error=repr(exc),
                  cause=repr(exc.__cause__ or exc.__context__))
    title = HTTP_TITLES.get(exc.status_code, "Request failed")
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in KEPT_HEADERS}
    if exc.status_code == 429:  # Litestar's rate limiter says when, but not as Retry-After
        headers["Retry-After"] = headers.get("RateLimit-Reset", "1")
    return _respond(
        Problem(title=title, status=exc.status_code, detail=str(detail or title),
                instance=request.url.path),
        headers,
    )


def _explain(error: dict[str, Any]) -> str:
    key = error.get("key") or error.get("source", "body")
    message = error.get("message")
    if message == repr(key):  # Litestar reports a missing value with its KeyError's text
        message = "required, but missing"
    return f"{'body' if key == 'data' else key}: {message}"


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    problem = problem_for(exc, instance=request.url.path)
    if problem.status == 503:
        if (extra := _unavailable.check(problem.detail)) is not None:
            log.warning("request_unavailable", path=request.url.path, error=problem.detail,
                        **extra)
    elif problem.status >= 500:
        log.error("request_failed", path=request.url.path, error=repr(exc), exc_info=True)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if problem.status == 503 else None
    return _respond(problem, headers)


HANDLERS = {HTTPException: on_http_error, Exception: on_error}
