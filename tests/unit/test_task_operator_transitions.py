"""Retry and cancel in the domain: which statuses allow them and what they leave behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import InvalidTransition
from domain.status import TaskSource, TaskStatus
from domain.task import CancelRequest, Task, Transition

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=5)
S = TaskStatus


def new() -> Task:
    return Task.create(id=uuid.UUID(int=7), title="t", description=None, payload={"a": 1},
                       source=TaskSource.API, now=T0)


def running() -> Task:
    return new().claim(now=T0, worker="w1", lease_until=T0 + timedelta(seconds=30))


def failed() -> Task:
    return running().fail(now=T0, reason="boom")


def test_a_retried_task_is_new_again_with_its_attempts_kept_and_its_error_gone() -> None:
    again = failed().retry(now=LATER)
    assert (again.status, again.attempts, again.error) == (S.NEW, 1, None)
    assert (again.started_at, again.finished_at, again.updated_at) == (None, None, LATER)


@pytest.mark.parametrize("task", [new(), running(), running().complete(now=T0)],
                         ids=["new", "in_progress", "completed"])
def test_only_a_task_in_error_can_be_retried(task: Task) -> None:
    with pytest.raises(InvalidTransition):
        task.retry(now=LATER)


def test_a_new_task_cancelled_ends_in_error_at_once_saying_who_and_why() -> None:
    done = new().cancel(now=LATER, actor="ops", reason="duplicate order")
    assert (done.status, done.error, done.finished_at) == (
        S.ERROR, "cancelled by ops: duplicate order", LATER)


def test_a_running_task_cancelled_keeps_running_with_a_request_for_its_worker() -> None:
    asked = running().cancel(now=LATER, actor=None, reason=None)
    assert asked.status is S.IN_PROGRESS
    assert asked.cancel_request == CancelRequest(at=LATER, actor=None, reason=None)
    stopped = asked.stop(now=LATER)
    assert (stopped.status, stopped.error, stopped.cancel_request) == (S.ERROR, "cancelled", None)


@pytest.mark.parametrize("task", [running().complete(now=T0), failed()], ids=["completed", "error"])
def test_a_final_task_cannot_be_cancelled(task: Task) -> None:
    with pytest.raises(InvalidTransition):
        task.cancel(now=LATER, actor="ops", reason=None)


def test_a_running_task_without_a_cancel_request_cannot_be_stopped() -> None:
    with pytest.raises(InvalidTransition):
        running().stop(now=LATER)


def test_an_expired_lease_of_a_task_whose_cancel_was_asked_ends_it_instead_of_rerunning_it(
) -> None:
    asked = running().cancel(now=LATER, actor="ops", reason="stop it")
    after = asked.expire(now=LATER, max_attempts=3)
    assert (after.status, after.error) == (S.ERROR, "cancelled by ops: stop it")


def test_every_cancel_error_starts_with_cancelled() -> None:
    for actor in (None, "ops"):
        for reason in (None, "why"):
            assert CancelRequest(at=T0, actor=actor, reason=reason).error().startswith(
                "cancelled")


def test_a_transition_applied_to_a_later_task_gives_the_task_right_after_the_change() -> None:
    created = new()
    claimed = created.claim(now=T0, worker="w1", lease_until=LATER)
    done = claimed.complete(now=LATER)
    as_then = Transition.between(created, claimed, worker="w1").applied_to(done)
    assert (as_then.status, as_then.attempts, as_then.started_at, as_then.finished_at) == (
        S.IN_PROGRESS, 1, T0, None)
    assert Transition.between(claimed, done).applied_to(done).finished_at == LATER
