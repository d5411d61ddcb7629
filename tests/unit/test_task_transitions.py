"""The status model of a Task: every (from, to) pair, leases, attempts and immutability."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from domain.errors import InvalidTransition
from domain.status import ALLOWED, TaskSource, TaskStatus
from domain.task import Task, Transition

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=7)
LEASE_UNTIL = LATER + timedelta(seconds=30)
S = TaskStatus


def a_task(status: TaskStatus = S.NEW, attempts: int = 0, **extra: object) -> Task:
    task = Task.create(
        id=uuid.UUID(int=1), title="t", description=None, payload={"k": 1},
        source=TaskSource.API, now=T0,
    )
    return msgspec.structs.replace(task, status=status, attempts=attempts, **extra)


def move(task: Task, to: TaskStatus) -> Task:
    """The one domain method that leads to `to`."""
    if to is S.IN_PROGRESS:
        return task.claim(now=LATER, worker="w1", lease_until=LEASE_UNTIL)
    if to is S.COMPLETED:
        return task.complete(now=LATER)
    if to is S.ERROR:
        return task.fail(now=LATER, reason="boom")
    if to is S.NEW:
        return task.retry(now=LATER) if task.status is S.ERROR else task.release(now=LATER)
    raise AssertionError(f"no method leads to {to}")


PAIRS = list(itertools.product(TaskStatus, repeat=2))
ALLOWED_PAIRS = [p for p in PAIRS if p in ALLOWED]
FORBIDDEN_PAIRS = [p for p in PAIRS if p not in ALLOWED]


def test_the_contract_transitions_are_allowed_and_only_a_retry_leaves_a_final_status() -> None:
    contract = {(S.NEW, S.IN_PROGRESS), (S.IN_PROGRESS, S.COMPLETED), (S.IN_PROGRESS, S.ERROR),
                (S.IN_PROGRESS, S.NEW), (S.ERROR, S.NEW), (S.NEW, S.ERROR)}
    assert contract == ALLOWED
    assert [pair for pair in ALLOWED if pair[0].is_final] == [(S.ERROR, S.NEW)]
    assert len(ALLOWED_PAIRS) + len(FORBIDDEN_PAIRS) == 16


@pytest.mark.parametrize(("old", "new"), ALLOWED_PAIRS, ids=lambda s: s.value)
def test_an_allowed_transition_succeeds_through_its_method(
    old: TaskStatus, new: TaskStatus
) -> None:
    before = a_task(old, attempts=1)
    after = move(before, new)
    assert after.status is new
    assert after.updated_at == LATER


@pytest.mark.parametrize(("old", "new"), FORBIDDEN_PAIRS, ids=lambda s: s.value)
def test_a_forbidden_transition_raises_invalid_transition(old: TaskStatus, new: TaskStatus) -> None:
    before = a_task(old, attempts=1)
    with pytest.raises(InvalidTransition) as caught:
        move(before, new)
    assert (caught.value.current, caught.value.wanted) == (old, new)
    assert str(before.id) in str(caught.value)


def test_a_refused_change_names_the_statuses_as_words() -> None:
    """It is the 409 detail that `tasks cancel` and `tasks retry` print."""
    with pytest.raises(InvalidTransition) as caught:
        a_task(S.ERROR, attempts=1).fail(now=LATER, reason="again")
    assert str(caught.value) == f"task {uuid.UUID(int=1)} is error and cannot go to error"


@pytest.mark.parametrize("status", [S.NEW, S.IN_PROGRESS, S.COMPLETED], ids=lambda s: s.value)
def test_only_a_failed_task_can_be_retried(status: TaskStatus) -> None:
    with pytest.raises(InvalidTransition) as caught:
        a_task(status, attempts=1).retry(now=LATER)
    assert (caught.value.current, caught.value.wanted) == (status, S.NEW)


def test_a_completed_task_cannot_be_claimed_again() -> None:
    done = a_task().claim(now=T0, worker="w", lease_until=LEASE_UNTIL).complete(now=LATER)
    with pytest.raises(InvalidTransition):
        done.claim(now=LATER, worker="w2", lease_until=LEASE_UNTIL)


def test_claim_counts_an_attempt_and_leases_the_task_to_the_worker() -> None:
    claimed = a_task(attempts=2).claim(now=LATER, worker="w1", lease_until=LEASE_UNTIL)
    assert claimed.attempts == 3
    assert (claimed.lease_owner, claimed.lease_expires_at) == ("w1", LEASE_UNTIL)
    assert claimed.started_at == LATER
    assert claimed.finished_at is None


def test_finishing_clears_the_lease_and_records_the_end() -> None:
    claimed = a_task().claim(now=T0, worker="w1", lease_until=LEASE_UNTIL)
    for done in (claimed.complete(now=LATER), claimed.fail(now=LATER, reason="bad")):
        assert (done.lease_owner, done.lease_expires_at) == (None, None)
        assert done.finished_at == LATER
    assert claimed.complete(now=LATER).error is None
    assert claimed.fail(now=LATER, reason="bad").error == "bad"


def test_release_keeps_the_attempt_unless_told_to_give_it_back() -> None:
    claimed = a_task(attempts=1).claim(now=T0, worker="w1", lease_until=LEASE_UNTIL)
    counted = claimed.release(now=LATER)
    handed_back = claimed.release(now=LATER, count_attempt=False)
    assert (counted.status, counted.attempts) == (S.NEW, 2)
    assert (handed_back.status, handed_back.attempts) == (S.NEW, 1)
    for back in (counted, handed_back):
        assert (back.lease_owner, back.lease_expires_at, back.started_at) == (None, None, None)


def test_an_expired_lease_below_max_attempts_goes_back_to_new() -> None:
    claimed = a_task(attempts=1).claim(now=T0, worker="w1", lease_until=LEASE_UNTIL)
    expired = claimed.expire(now=LATER, max_attempts=3)
    assert (expired.status, expired.attempts, expired.error) == (S.NEW, 2, None)


def test_an_expired_lease_at_max_attempts_ends_in_error_naming_the_attempts() -> None:
    claimed = a_task(attempts=2).claim(now=T0, worker="w1", lease_until=LEASE_UNTIL)
    expired = claimed.expire(now=LATER, max_attempts=3)
    assert expired.status is S.ERROR
    assert expired.error is not None
    assert "3 of 3" in expired.error
    assert expired.finished_at == LATER


def test_a_task_is_frozen_and_a_transition_returns_a_new_value() -> None:
    before = a_task()
    snapshot = msgspec.structs.asdict(before)
    after = before.claim(now=LATER, worker="w1", lease_until=LEASE_UNTIL)
    assert after is not before
    assert msgspec.structs.asdict(before) == snapshot
    with pytest.raises(AttributeError):
        before.status = S.COMPLETED  # type: ignore[misc]


def test_a_new_task_starts_new_with_no_attempts_and_no_error() -> None:
    task = a_task()
    assert (task.status, task.attempts, task.error) == (S.NEW, 0, None)
    assert task.created_at == task.updated_at == T0
    assert (task.started_at, task.finished_at, task.lease_owner) == (None, None, None)


def test_transition_between_nothing_and_a_task_records_its_creation() -> None:
    task = a_task()
    entry = Transition.between(None, task)
    assert (entry.task_id, entry.from_status, entry.to_status) == (task.id, None, S.NEW)
    assert (entry.at, entry.attempt, entry.worker, entry.reason) == (T0, 0, None, None)


def test_transition_between_two_values_takes_the_reason_from_the_error_unless_given() -> None:
    claimed = a_task().claim(now=T0, worker="w1", lease_until=LEASE_UNTIL)
    failed = claimed.fail(now=LATER, reason="boom")
    entry = Transition.between(claimed, failed, worker="w1")
    assert (entry.from_status, entry.to_status, entry.at) == (S.IN_PROGRESS, S.ERROR, LATER)
    assert (entry.attempt, entry.worker, entry.reason) == (1, "w1", "boom")
    assert Transition.between(claimed, failed, reason="other").reason == "other"


@pytest.mark.parametrize(("dispatches", "said"),
                         [(1, "dispatched once"), (3, "dispatched 3 times")])
def test_a_task_never_claimed_ends_in_error_saying_how_often_it_was_sent(
    dispatches: int, said: str,
) -> None:
    ended = a_task(attempts=1).never_claimed(now=LATER, dispatches=dispatches)
    assert (ended.status, ended.attempts, ended.finished_at) == (S.ERROR, 1, LATER)
    assert ended.error == (f"never claimed: {said} and each dispatch was lost "
                           "(dead-lettered, purged or sent to a missing queue)")


@pytest.mark.parametrize("status", [S.IN_PROGRESS, S.COMPLETED, S.ERROR])
def test_only_a_waiting_task_can_be_never_claimed(status: TaskStatus) -> None:
    extra = {"error": "boom"} if status is S.ERROR else {}
    with pytest.raises(InvalidTransition):
        a_task(status, attempts=1, **extra).never_claimed(now=LATER, dispatches=3)
