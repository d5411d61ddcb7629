"""Cancels of running tasks, delivered to the worker that runs them by LISTEN/NOTIFY."""

from __future__ import annotations

import uuid

from adapters.postgres.listener import PostgresListener
from application.stops import StopRequests

#: notified when a running task's cancel is asked for: by the trigger `tasks_cancel_notify` on
#: tasks (migration 0002), when `cancel_request` goes from null to set; payload "<id> <attempt>"
CANCELS = "task_cancels"


def hear_cancels(listener: PostgresListener, stops: StopRequests) -> None:
    """Cancels asked for running tasks reach this process's StopRequests (the lease renewal
    finds them too, should a notification be lost)."""

    def hear(payload: str | None) -> None:
        if payload:
            task_id, attempt = payload.split()
            stops.request((uuid.UUID(task_id), int(attempt)))

    listener.on(CANCELS, hear)
