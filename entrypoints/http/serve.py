"""App factories uvicorn imports by name, so that each of several API processes builds its own."""

from __future__ import annotations

from litestar import Litestar

from entrypoints.container import build_container, use_memory
from entrypoints.http.app import create_app
from entrypoints.logging import configure_logging
from entrypoints.runtime import api_lifespan, dev_lifespan
from entrypoints.settings import load_settings


def api_from_env() -> Litestar:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    container = build_container(settings)
    return create_app(container, [api_lifespan(container, intake=settings.intake_enabled)])


def dev_from_env() -> Litestar:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    container = build_container(settings)
    queue = use_memory(container)
    return create_app(container, [dev_lifespan(container, queue)])
