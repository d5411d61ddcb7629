"""A repeated log line is said once per interval; a new reason is said at once."""

from __future__ import annotations

from application.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_occurrence_is_said_and_repeats_within_the_interval_are_not() -> None:
    clock = Clock()
    throttle = Throttle(30, clock)

    said = [throttle.check("database down") for _ in range(1000)]

    assert said[0] == {}
    assert said[1:] == [None] * 999


def test_after_the_interval_it_is_said_again_with_how_often_it_was_held_back() -> None:
    clock = Clock()
    throttle = Throttle(30, clock)
    throttle.check("database down")
    for _ in range(5):
        throttle.check("database down")

    clock.now += 30
    assert throttle.check("database down") == {"repeated": 5}
    clock.now += 30
    assert throttle.check("database down") == {}


def test_a_new_reason_is_said_at_once() -> None:
    throttle = Throttle(30, Clock())
    assert throttle.check("connection refused") == {}
    assert throttle.check("authentication failed") == {}


def test_it_remembers_a_bounded_number_of_reasons() -> None:
    clock = Clock()
    throttle = Throttle(30, clock, max_keys=4)
    for n in range(100):
        assert throttle.check(f"reason {n}") == {}
    assert len(throttle._said) <= 4
