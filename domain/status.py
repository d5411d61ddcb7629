"""The status model: a task's statuses, where it came from, and every allowed change."""

from __future__ import annotations

import enum


class TaskStatus(enum.StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.ERROR)


class TaskSource(enum.StrEnum):
    API = "api"
    AMQP = "amqp"


#: Every allowed (from, to) pair. Later features add pairs; none is ever removed.
ALLOWED: frozenset[tuple[TaskStatus, TaskStatus]] = frozenset(
    {
        (TaskStatus.NEW, TaskStatus.IN_PROGRESS),
        (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED),
        (TaskStatus.IN_PROGRESS, TaskStatus.ERROR),
        # a claim that expired or was handed back on shutdown goes back to the queue
        (TaskStatus.IN_PROGRESS, TaskStatus.NEW),
        # an operator retries a failed task
        (TaskStatus.ERROR, TaskStatus.NEW),
        # an operator cancels a task that no worker has taken yet
        (TaskStatus.NEW, TaskStatus.ERROR),
    }
)
