"""Errors the domain and use cases raise; adapters map them to HTTP or AMQP answers."""


class DomainError(Exception):
    """Base of every error a client can cause or observe."""


class InvalidTransition(DomainError):
    """The task is not in a status from which this change is allowed."""

    def __init__(self, task_id: object, current: str, wanted: str) -> None:
        super().__init__(f"task {task_id} is {current} and cannot go to {wanted}")
        self.current = current
        self.wanted = wanted


class TaskNotFound(DomainError):
    def __init__(self, task_id: object) -> None:
        super().__init__(f"task {task_id} does not exist")


class IdempotencyConflict(DomainError):
    """The idempotency key was already used with a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used with a different request")


class InvalidInput(DomainError):
    """The request cannot become a task or a query (bad field, bad cursor, bad status)."""


class ServiceUnavailable(Exception):
    """A backing service (database, broker) cannot be reached right now; retrying may help."""
