"""Ports for what operators watch — metrics and traces — and the do-nothing versions of both.

The use cases report events (a task created, claimed, finished) and open spans around the
steps of a task's life; which library counts or exports them is the adapters' business. A trace
context leaves a process only as an opaque string (a W3C `traceparent` value, though nothing
here reads it): the use cases store it with a dispatch and the adapters carry it on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Literal, Protocol

from domain.status import TaskSource, TaskStatus

SpanKind = Literal["internal", "server", "client", "producer", "consumer"]
Attribute = str | int | float | bool


class Metrics(Protocol):
    """Counts events where they happen; each process counts its own (a scrape sums them)."""

    def created(self, source: TaskSource) -> None:
        """A task was stored (not an idempotent replay)."""
        ...

    def claimed(self, queue_wait_seconds: float) -> None:
        """A worker claimed a task that had waited this long since it became `new`."""
        ...

    def finished(self, status: TaskStatus, processing_seconds: float | None) -> None:
        """A task reached a final status; `processing_seconds` from claim to finish when a
        worker ran it, None when it never ran (cancelled while `new`, given up by recovery)."""
        ...

    def recovered(self, count: int) -> None:
        """Claims taken back after their lease expired."""
        ...


class Span(Protocol):
    @property
    def context(self) -> str | None:
        """This span as an opaque string that continues the trace elsewhere; None when off."""
        ...

    def set(self, key: str, value: Attribute) -> None: ...


class Tracer(Protocol):
    """Spans around the steps of a task's life. With tracing off every call is a no-op that
    allocates nothing."""

    def current(self) -> str | None:
        """The active span as an opaque string (to store with a dispatch); None when there is
        none or tracing is off."""
        ...

    def span(self, name: str, task_id: uuid.UUID | None = None, *, parent: str | None = None,
             kind: SpanKind = "internal",
             attributes: Mapping[str, Attribute] | None = None) -> AbstractContextManager[Span]:
        """A span around a block: a child of `parent` (an opaque string from `current` or from
        a message) when given, else of the active span."""
        ...


class NoMetrics:
    """Counts nothing."""

    def created(self, source: TaskSource) -> None:
        return None

    def claimed(self, queue_wait_seconds: float) -> None:
        return None

    def finished(self, status: TaskStatus, processing_seconds: float | None) -> None:
        return None

    def recovered(self, count: int) -> None:
        return None


class _NoSpan:
    context = None

    def set(self, key: str, value: Attribute) -> None:
        return None


class _NoSpanBlock:
    """A reusable, reentrant context manager: entering it costs two method calls."""

    def __enter__(self) -> Span:
        return NO_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


class NoTracing:
    """Tracing off: no spans, no contexts."""

    def current(self) -> str | None:
        return None

    def span(self, name: str, task_id: uuid.UUID | None = None, *, parent: str | None = None,
             kind: SpanKind = "internal",
             attributes: Mapping[str, Attribute] | None = None) -> AbstractContextManager[Span]:
        return _NO_BLOCK


NO_SPAN: Span = _NoSpan()
_NO_BLOCK = _NoSpanBlock()
NO_METRICS: Metrics = NoMetrics()
NO_TRACING: Tracer = NoTracing()
