"""The service's own front-end files at /static, so that its pages work with no Internet access."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

#: Shipped inside the package (hatchling puts every file of `entrypoints` into the wheel).
DIRECTORY = Path(__file__).parent / "static"
PREFIX = "/static"
#: One vendored npm package per folder, its version in the name (static/vendor/README.md).
SWAGGER_UI = f"{PREFIX}/vendor/swagger-ui-dist-5.35.0"
#: A year: a file's URL carries its package's version, so what a URL names never changes.
YEAR = 365 * 24 * 3600


def static_files() -> Router:
    return create_static_files_router(
        path=PREFIX, directories=[DIRECTORY], name="static", include_in_schema=False,
        cache_control=CacheControlHeader(max_age=YEAR, public=True, immutable=True),
    )


def swagger_ui(path: str = "/") -> SwaggerRenderPlugin:
    """Swagger UI on the vendored files; its defaults (bundle, CSS, favicon) are on a CDN."""
    return SwaggerRenderPlugin(
        path=path,
        js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_UI}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_UI}/swagger-ui-standalone-preset.js",
        favicon=f'<link rel="icon" type="image/png" href="{SWAGGER_UI}/favicon-32x32.png">',
    )
