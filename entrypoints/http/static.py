"""The service's own front-end files at /static, so that its pages work with no Internet access."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.static_files import create_static_files_router

#: Shipped inside the package (hatchling puts every file of `entrypoints` into the wheel).
DIRECTORY = Path(__file__).parent / "static"


def static_files() -> Router:
    return create_static_files_router(path="/static", directories=[DIRECTORY], name="static",
                                      include_in_schema=False)
