"""The dashboard's files: served by the app itself, with their types, open, and all local."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from entrypoints.http.ui import DIRECTORY
from tests.unit.http_client import assert_problem, serving

KEYS = "ops:admin:admin-secret,viewer:read:read-secret"
TYPES = {".html": "text/html", ".js": "javascript", ".css": "text/css"}
#: Any reference to another host: a scheme, or a protocol-relative `//host`.
OUTSIDE = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}|(?:src|href|url)\s*[=(]\s*["']?//""",
                     re.IGNORECASE)


class References(HTMLParser):
    """Every `src` and `href` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.found


async def test_the_page_and_every_file_it_loads_are_served_with_their_types() -> None:
    async with serving() as (client, _):
        page = await client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        loaded = [r for r in references(page.text) if not r.startswith(("data:", "#"))]
        assert {"/ui/app.js", "/ui/app.css"} <= set(loaded)
        assert any(r.startswith("/static/vendor/uplot-") for r in loaded)
        for path in loaded:
            assert path.startswith("/") and not path.startswith("//"), path
            if path == "/docs":
                continue
            answer = await client.get(path)
            assert answer.status_code == 200, path
            suffix = path[path.rindex("."):]
            assert TYPES[suffix] in answer.headers["content-type"], (path, answer.headers)


async def test_index_html_is_also_served_under_its_own_name_and_with_a_slash() -> None:
    async with serving() as (client, _):
        first = (await client.get("/ui")).text
        assert (await client.get("/ui/")).text == first
        assert (await client.get("/ui/index.html")).text == first


@pytest.mark.parametrize("name", ["index.html", "app.js", "app.css"])
def test_the_dashboards_own_files_name_no_other_host(name: str) -> None:
    text = (DIRECTORY / name).read_text()
    assert OUTSIDE.findall(text) == []


async def test_an_unknown_file_or_a_way_out_of_the_folder_is_a_404_problem() -> None:
    async with serving() as (client, _):
        assert_problem(await client.get("/ui/nothing.js"), 404)
        assert_problem(await client.get("/ui/%2e%2e/ui.py"), 404)
        assert_problem(await client.get("/ui/..%2fui.py"), 404)


async def test_with_keys_on_the_files_stay_open_and_the_key_check_needs_a_key() -> None:
    async with serving(api_keys=KEYS) as (client, _):
        for path in ("/ui", "/ui/app.js", "/ui/app.css"):
            assert (await client.get(path)).status_code == 200, path
        refused = await client.get("/ui/key")
        assert_problem(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert_problem(await client.get("/ui/key", headers={"Authorization": "Bearer nope"}), 401)
        viewer = await client.get("/ui/key", headers={"Authorization": "Bearer read-secret"})
        assert viewer.json() == {"required": True, "name": "viewer", "scope": "read"}
        ops = await client.get("/ui/key", headers={"X-API-Key": "admin-secret"})
        assert ops.json() == {"required": True, "name": "ops", "scope": "admin"}
        assert "no-store" in ops.headers["cache-control"]


async def test_with_keys_off_the_page_may_do_everything() -> None:
    async with serving() as (client, _):
        answer = await client.get("/ui/key")
        assert answer.json() == {"required": False, "name": None, "scope": "admin"}


async def test_the_dashboard_is_not_part_of_the_api_document() -> None:
    async with serving() as (client, _):
        paths = (await client.get("/docs/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith(("/ui", "/static"))]


async def test_the_key_check_is_rate_limited_like_the_api_but_the_files_are_not() -> None:
    async with serving(api_keys=KEYS, rate_limit_per_second=2) as (client, _):
        files = [(await client.get("/ui/app.js")).status_code for _ in range(6)]
        guesses = [(await client.get("/ui/key", headers={"X-API-Key": f"guess-{n}"})).status_code
                   for n in range(6)]
        assert files == [200] * 6
        assert 429 in guesses, guesses


def test_every_element_the_script_looks_up_is_on_the_page() -> None:
    """A renamed id would only show as a broken button in a browser; here it fails at once."""
    script = (DIRECTORY / "app.js").read_text()
    page = (DIRECTORY / "index.html").read_text()
    wanted = set(re.findall(r"""\$\("([\w-]+)"\)""", script))
    present = set(re.findall(r"""\sid="([\w-]+)\"""", page))
    assert {"paused-banner", "resume", "pause", "pause-dialog", "detail-diagnosis",
            "diagnosis-state"} <= wanted
    assert wanted - present == set()
