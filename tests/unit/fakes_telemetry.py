"""Hand-written fakes for the telemetry ports: metrics and spans kept in lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from application.telemetry import Attribute, SpanKind
from domain.status import TaskSource, TaskStatus


class RecordedMetrics:
    """Every event the use cases report, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def created(self, source: TaskSource) -> None:
        self.events.append(("created", source))

    def claimed(self, queue_wait_seconds: float) -> None:
        self.events.append(("claimed", queue_wait_seconds))

    def finished(self, status: TaskStatus, processing_seconds: float | None) -> None:
        self.events.append(("finished", status, processing_seconds))

    def recovered(self, count: int) -> None:
        self.events.append(("recovered", count))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [e[1:] for e in self.events if e[0] == name]


@dataclass
class RecordedSpan:
    name: str
    task_id: uuid.UUID | None
    parent: str | None
    kind: SpanKind
    context: str
    attributes: dict[str, Attribute] = field(default_factory=dict)
    ended: bool = False

    def set(self, key: str, value: Attribute) -> None:
        self.attributes[key] = value


class RecordedTracer:
    """Spans as a list, nested through a stack; a span's context is `ctx-<n>`."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []
        self._open: list[RecordedSpan] = []

    def current(self) -> str | None:
        return self._open[-1].context if self._open else None

    @contextmanager
    def span(self, name: str, task_id: uuid.UUID | None = None, *, parent: str | None = None,
             kind: SpanKind = "internal",
             attributes: Mapping[str, Attribute] | None = None) -> Iterator[RecordedSpan]:
        span = RecordedSpan(name, task_id, parent if parent is not None else self.current(),
                            kind, f"ctx-{len(self.spans) + 1}", dict(attributes or {}))
        self.spans.append(span)
        self._open.append(span)
        try:
            yield span
        finally:
            self._open.remove(span)
            span.ended = True
