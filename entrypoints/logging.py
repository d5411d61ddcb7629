"""structlog set-up: key-value events, console or JSON, context bound through contextvars."""

from __future__ import annotations

import logging
import sys

import structlog

from entrypoints.tracing import requested as tracing_requested
from entrypoints.tracing import trace_ids


def configure_logging(fmt: str = "console", level: str = "INFO") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        trace_ids(tracing_requested()),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if fmt == "json" else _noop,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: route them through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer,
        ], foreign_pre_chain=shared)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelName(level), logging.INFO))
    for noisy in ("aiormq", "aio_pika", "psycopg.pool", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name, said_by_us in _SAID_BY_THE_ADAPTERS.items():
        library = logging.getLogger(name)
        for old in [f for f in library.filters if isinstance(f, _Without)]:
            library.removeFilter(old)  # configured again (each API process does)
        library.addFilter(_Without(said_by_us))


#: Library lines about a failed connection attempt that the adapters already say in one line of
#: their own, naming the setting and the fix (database_connect_failed, broker_unavailable). The
#: library's would repeat it over several lines, psycopg's with the whole URL, password included.
_SAID_BY_THE_ADAPTERS = {
    "psycopg.pool": "error connecting in",
    "aiormq.connection": "error when creating transport",
}


class _Without(logging.Filter):
    """Drops the records whose message template starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _noop(
    logger: structlog.types.WrappedLogger, name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event
