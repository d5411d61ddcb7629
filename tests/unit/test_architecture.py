"""Import contract: the dependency arrows point inward (checked on the source, with ast)."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = frozenset(sys.stdlib_module_names)
INFRASTRUCTURE = frozenset({"psycopg", "psycopg_pool", "faststream", "aio_pika", "litestar",
                            "prometheus_client", "opentelemetry"})
EDGES = ("adapters", "entrypoints")
#: the service's own packages (what the wheel ships); tests/ and bench/ are tooling, not layers
SHIPPED: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"][
    "build"]["targets"]["wheel"]["packages"]


def imported_modules(source: str, package: str) -> set[str]:
    """Every module `source` imports, relative imports resolved against its `package`.

    Also catches `importlib.import_module("x")` and `__import__("x")` with a literal name.
    """
    parts = package.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            else:
                found.add(node.module or "")
        elif (
            isinstance(node, ast.Call) and _is_dynamic_import(node.func)
            and node.args and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )


def roots(source: str, package: str) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(source, package) if name}


def forbidden(source: str, package: str, allowed: frozenset[str]) -> set[str]:
    """Top-level packages imported by `source` that are neither stdlib nor in `allowed`."""
    return {r for r in roots(source, package) if r not in STDLIB and r not in allowed}


def sources(*top: str) -> Iterator[tuple[str, str, str]]:
    """(path, package, source) of every .py file under the given top-level folders."""
    for folder in top:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            yield str(relative), ".".join(relative.parent.parts), path.read_text()


def outside_the_edges() -> list[str]:
    """The service's packages other than adapters and entrypoints."""
    return sorted(set(SHIPPED) - set(EDGES))


# --- the rules, checked on the real source ---------------------------------------------


def test_the_scan_sees_the_layers() -> None:
    assert set(EDGES) <= set(SHIPPED)
    assert {"domain", "application"} <= set(outside_the_edges())
    assert len(list(sources("domain"))) >= 2
    assert len(list(sources("application"))) >= 5
    assert len(list(sources("adapters"))) >= 5


def test_domain_imports_only_the_standard_library_and_msgspec() -> None:
    allowed = frozenset({"msgspec", "domain"})
    bad = {path: forbidden(src, pkg, allowed) for path, pkg, src in sources("domain")}
    assert {m: b for m, b in bad.items() if b} == {}


def test_application_imports_only_the_standard_library_msgspec_structlog_and_inner_layers() -> None:
    allowed = frozenset({"msgspec", "structlog", "domain", "application"})
    bad = {path: forbidden(src, pkg, allowed) for path, pkg, src in sources("application")}
    assert {m: b for m, b in bad.items() if b} == {}


def test_only_adapters_entrypoints_and_tests_import_infrastructure_libraries() -> None:
    bad = {
        path: roots(src, pkg) & INFRASTRUCTURE for path, pkg, src in sources(*outside_the_edges())
    }
    assert {m: b for m, b in bad.items() if b} == {}


def test_adapters_never_import_entrypoints() -> None:
    bad = {path: roots(src, pkg) & {"entrypoints"} for path, pkg, src in sources("adapters")}
    assert {m: b for m, b in bad.items() if b} == {}


def test_the_command_line_client_imports_only_httpx_and_itself() -> None:
    """It speaks HTTP to the service: nothing of the service's own layers, no drivers."""
    allowed = frozenset({"httpx", "entrypoints"})
    found = list(sources("entrypoints/client"))
    assert len(found) >= 5
    bad = {path: forbidden(src, pkg, allowed) for path, pkg, src in found}
    inner = {path: {m for m in imported_modules(src, pkg) if m.startswith("entrypoints")
                    and not m.startswith("entrypoints.client")} for path, pkg, src in found}
    assert {m: b for m, b in bad.items() if b} == {}
    assert {m: b for m, b in inner.items() if b} == {}


# --- the checker itself can fail -------------------------------------------------------

DOMAIN = frozenset({"msgspec", "domain"})


@pytest.mark.parametrize(
    ("source", "package", "culprit"),
    [
        ("import psycopg\n", "domain", "psycopg"),
        ("from litestar import Litestar\n", "domain", "litestar"),
        ("import structlog\n", "domain", "structlog"),
        ("from application.model import Page\n", "domain", "application"),
        ("from adapters.memory import InMemoryStore\n", "domain", "adapters"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import faststream\n",
         "domain", "faststream"),
        ("def f():\n    import aio_pika\n", "domain", "aio_pika"),
        ("import importlib\nimportlib.import_module('psycopg_pool')\n", "domain",
         "psycopg_pool"),
        ("__import__('entrypoints')\n", "domain", "entrypoints"),
    ],
)
def test_the_checker_catches_a_forbidden_import(source: str, package: str, culprit: str) -> None:
    assert culprit in forbidden(source, package, DOMAIN)


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations\nimport uuid, enum\nfrom datetime import datetime\n",
        "import msgspec\nfrom msgspec import Struct\n",
        "from domain.errors import InvalidTransition\n",
        "from .errors import InvalidTransition\n",
        "from . import errors\n",
        "import collections.abc\nimport importlib\n",
    ],
)
def test_the_checker_lets_allowed_imports_pass(source: str) -> None:
    assert forbidden(source, "domain", DOMAIN) == set()


def test_relative_imports_resolve_against_the_importing_package() -> None:
    assert imported_modules("from ..memory import store\n", "adapters.postgres") == {
        "adapters.memory"}
    assert imported_modules("from . import broker\n", "adapters.memory") == {"adapters.memory"}
    assert imported_modules("from .store import X\n", "adapters.memory") == {
        "adapters.memory.store"}
    assert roots("from ..postgres import uow\n", "adapters.memory") == {"adapters"}
