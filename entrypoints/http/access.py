"""Who may call what: API keys with scopes, checked by one guard on every route."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.spec import Components, OpenAPI, SecurityScheme

from entrypoints.keys import ApiKey, Scope, find_key

#: What a 401 carries (RFC 6750).
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tasks"'}
SECURITY_SCHEMES = Components(security_schemes={
    "bearer": SecurityScheme(type="http", scheme="bearer",
                             description="`Authorization: Bearer <secret>`"),
    "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                             description="`X-API-Key: <secret>` (the same secret)"),
})


def needs(scope: Scope) -> dict[str, Any]:
    """Route options for an operation that needs `scope` when keys are configured: the
    guard reads `opt`, the OpenAPI document shows `security`."""
    return {"opt": {"scope": scope}, "security": [{"bearer": []}, {"apiKey": []}]}


_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def document_open_access(document: OpenAPI) -> None:
    """With no keys every operation is open (see make_guard): the document then asks no
    operation for credentials, so that no client (nor a fuzzer) is told that a key is checked
    where none is. The schemes stay described, for when keys are turned on."""
    for item in (document.paths or {}).values():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is not None:
                operation.security = None
    document.info.description = (f"{document.info.description or ''} Authentication is off "
                                 "on this instance (TASKS_API_KEYS is not set).").strip()


def presented_secret(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The secret from `Authorization: Bearer …` or `X-API-Key`; None if neither is usable."""
    header = connection.headers.get("authorization")
    if header is not None:
        kind, _, token = header.strip().partition(" ")
        return token.strip() or None if kind.lower() == "bearer" else None
    return connection.headers.get("x-api-key") or None


def key_of(keys: tuple[ApiKey, ...],
           connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    secret = presented_secret(connection)
    return find_key(keys, secret) if secret is not None else None


def make_guard(keys: tuple[ApiKey, ...]) -> Any:
    """With no keys every endpoint is open. Otherwise an operation whose route needs a scope
    answers 401 without a known key and 403 with a key of a smaller scope; the key's name is
    kept on the request as the actor of what it does. Routes without a scope (health, metrics,
    docs, the dashboard's files) stay open. The guard is a coroutine: Litestar runs a plain
    function guard in a worker thread, a hop per request."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        needed = handler.opt.get("scope")
        if not keys or needed is None:
            return
        key = key_of(keys, connection)
        if key is None:
            raise NotAuthorizedException(
                "an API key is required: send Authorization: Bearer <secret> or X-API-Key",
                headers=CHALLENGE)
        if key.scope < needed:
            raise PermissionDeniedException(
                f"the key {key.name!r} has scope {key.scope.name.lower()}; "
                f"this needs {needed.name.lower()}")
        connection.state["actor"] = key.name

    return guard


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The API key's name, or None when authentication is off."""
    actor = connection.state.get("actor")
    return str(actor) if actor is not None else None


def rate_limit(per_second: int, keys: tuple[ApiKey, ...]) -> DefineMiddleware:
    """At most `per_second` requests a second per API key (per client address when keys are
    off, or for a request without a known key); over it, a 429 problem with `Retry-After`.
    Health, metrics, docs and the dashboard's files are not counted; the dashboard's key
    check is, like every other place a secret can be tried."""

    def identity(request: Request[Any, Any, Any]) -> str:
        key = key_of(keys, request) if keys else None
        if key is not None:
            return f"key:{key.name}"
        return f"address:{request.client.host if request.client else 'unknown'}"

    return RateLimitConfig(
        rate_limit=("second", per_second), identifier_for_request=identity,
        exclude=[r"^/health/", r"^/metrics", r"^/docs", r"^/static/", r"^/ui(?!/key)"],
    ).middleware
