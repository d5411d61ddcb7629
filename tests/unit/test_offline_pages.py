"""Every page the service serves works offline: nothing it loads comes from another host."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.enums import MediaType
from litestar.routes import HTTPRoute

from tests.unit.http_client import serving

#: The HTML pages the service serves. Add each new page here (the dashboard at /ui, the AsyncAPI
#: page at /docs/asyncapi); a test below also finds every HTML route of the app by itself.
PAGES = ["/docs", "/docs/oauth2-redirect.html"]
#: Where a page names something the browser loads: src= and href= attributes, CSS url(...).
REFERENCE = re.compile(
    r"""\b(?:src|href)\s*=\s*["']?(?P<attr>[^"'\s>]+)|url\(\s*["']?(?P<css>[^"')\s]+)""",
    re.IGNORECASE,
)
OUTSIDE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host


def references(text: str) -> list[str]:
    return [m["attr"] or m["css"] for m in REFERENCE.finditer(text)]


def html_routes(app: Litestar) -> set[str]:
    """Every GET route without path parameters whose handler answers HTML."""
    found = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_parameters:
            continue
        for handler in route.route_handlers:
            if "GET" in handler.http_methods and handler.media_type == MediaType.HTML:
                found.add(route.path)
    return found


def test_references_are_found_in_attributes_and_css_and_outside_hosts_are_recognised() -> None:
    html = """<link href="/static/a.css"><script src='https://cdn.example/x.js'></script>
              <img src=//cdn.example/i.png><style>b{background:url("/static/b.png")}</style>"""
    found = references(html)
    assert found == ["/static/a.css", "https://cdn.example/x.js", "//cdn.example/i.png",
                     "/static/b.png"]
    assert [r for r in found if OUTSIDE.match(r)] == ["https://cdn.example/x.js",
                                                      "//cdn.example/i.png"]


async def test_the_list_of_pages_has_every_html_page_of_the_app() -> None:
    async with serving() as (client, _):
        assert html_routes(client.app) == set(PAGES)


@pytest.mark.parametrize("page", PAGES)
async def test_a_page_references_no_outside_host_and_every_asset_it_names_is_served(
    page: str,
) -> None:
    async with serving() as (client, _):
        response = await client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        found = references(response.text)
        assert [r for r in found if OUTSIDE.match(r)] == []
        assets = {r for r in found if r.startswith("/")}
        checked: dict[str, Any] = {}
        while assets:  # the assets, and what their stylesheets name in turn
            asset = assets.pop()
            answer = await client.get(asset)
            checked[asset] = answer.status_code
            if answer.status_code == 200 and asset.endswith(".css"):
                named = references(answer.text)
                assert [r for r in named if OUTSIDE.match(r)] == [], asset
                assets |= {r for r in named if r.startswith("/")} - checked.keys()
        assert {a: s for a, s in checked.items() if s != 200} == {}


async def test_swagger_ui_loads_its_files_from_the_service_itself() -> None:
    async with serving() as (client, _):
        found = references((await client.get("/docs")).text)
    vendored = "/static/vendor/swagger-ui-dist-5.35.0/"
    assert {vendored + name for name in ("swagger-ui-bundle.js", "swagger-ui.css",
            "swagger-ui-standalone-preset.js", "favicon-32x32.png")} <= set(found)


async def test_static_files_are_cached_for_long_since_their_paths_carry_versions() -> None:
    async with serving() as (client, _):
        response = await client.get("/static/vendor/swagger-ui-dist-5.35.0/swagger-ui.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    cache = response.headers["cache-control"]
    assert "max-age=31536000" in cache
    assert "public" in cache


async def test_a_missing_static_file_is_a_404_problem() -> None:
    async with serving() as (client, _):
        response = await client.get("/static/vendor/nothing-1.0/none.js")
    assert response.status_code == 404
