"""The dashboard at /ui: one page, its script and its style, served by the service itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from entrypoints.http.access import key_of
from entrypoints.keys import ApiKey, Scope
from entrypoints.wire import Wire

#: Shipped inside the package (hatchling puts every file of `entrypoints` into the wheel).
DIRECTORY = Path(__file__).parent / "static" / "ui"
#: Only this service: no other host may serve a script, a style, a font or a connection.
POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
          "frame-ancestors 'none'; form-action 'self'")
NO_STORE = CacheControlHeader(no_store=True)
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}


class KeyOut(Wire):
    """What the presented key may do; with keys off, everything (and `required` is false)."""

    required: bool
    name: str | None
    scope: str  # read, write or admin


def dashboard(keys: tuple[ApiKey, ...]) -> list[Any]:
    """The page's files, open (no scope) so that the page can load and then ask for a key,
    and revalidated on each load (they change with the service); and `GET /ui/key`, which
    tells the page what the person's key may do, so that it offers only what the key allows
    instead of failing on it."""

    @get("/ui/key", include_in_schema=False, sync_to_thread=False, cache_control=NO_STORE,
         opt={"scope": Scope.READ})
    def key(request: Request[Any, Any, Any]) -> KeyOut:
        # With keys on, the guard has already refused a request without a known key.
        found = key_of(keys, request) if keys else None
        if found is None:
            return KeyOut(required=False, name=None, scope="admin")
        return KeyOut(required=True, name=found.name, scope=found.scope.name.lower())

    files: Router = create_static_files_router(
        path="/ui", directories=[DIRECTORY], html_mode=True, name="ui", include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True), after_request=_secure)
    return [key, files]


def _secure(response: Response[Any]) -> Response[Any]:
    response.headers.update(HEADERS)
    return response
