"""The client's SSE parser, and resuming a stream with Last-Event-ID after it drops."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from entrypoints.client.sse import Dropped, Event, Parser, follow, parse


def lines(text: str) -> list[str]:
    return text.split("\n")


def test_an_event_is_its_fields_up_to_a_blank_line() -> None:
    events = list(parse(lines("id: 7\nevent: transition\ndata: {\"a\": 1}\n\n")))
    assert events == [Event(data='{"a": 1}', event="transition", id="7")]


def test_comments_keep_alive_and_are_no_events() -> None:
    assert list(parse(lines(": connected\n\n: keep-alive\n\ndata: x\n\n"))) == [Event(data="x")]


def test_data_lines_join_with_newlines_and_one_leading_space_is_dropped() -> None:
    events = list(parse(lines("data:first\ndata:  second\ndata\n\n")))
    assert events == [Event(data="first\n second\n")]


def test_the_event_type_resets_after_each_event_but_the_id_stays() -> None:
    events = list(parse(lines("id: 1\nevent: transition\ndata: a\n\ndata: b\n\n")))
    assert events == [Event(data="a", event="transition", id="1"), Event(data="b", id="1")]


def test_unknown_fields_an_id_with_nul_and_events_without_data_are_ignored() -> None:
    events = list(parse(lines("id: 1\n\nfoo: bar\nid: 2\x003\ndata: x\n\nevent: lonely\n\n")))
    assert events == [Event(data="x", id="1")]


def test_retry_sets_the_reconnection_delay_in_milliseconds() -> None:
    parser = Parser()
    for line in ("retry: 3000", "retry: soon", ""):
        parser.feed(line)
    assert parser.retry_seconds == 3.0


def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert list(parse(lines("data: whole\n\ndata: cut"))) == [Event(data="whole")]
    parser = Parser()
    parser.feed("data: cut")
    parser.end_of_stream()
    assert parser.feed("") is None


class FakeStream:
    """Connections scripted as lists of lines; an exception in a script drops the connection
    there. Records the Last-Event-ID each connection sent."""

    def __init__(self, *scripts: list[str | Exception]) -> None:
        self.scripts = list(scripts)
        self.sent: list[str] = []
        self.sleeps: list[float] = []
        self.now = 0.0

    def connect(self, last_event_id: str) -> Generator[str, None, None]:
        self.sent.append(last_event_id)
        script = self.scripts.pop(0) if self.scripts else [Dropped("connection refused")]
        for item in script:
            if isinstance(item, Exception):
                raise item
            yield item

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def follow(self, **options: object) -> Generator[Event, None, None]:
        return follow(self.connect, sleep=self.sleep, clock=lambda: self.now,
                      finished=lambda e: e.data == "final", **options)  # type: ignore[arg-type]


def frame(n: int, data: str | None = None) -> list[str]:
    return [f"id: {n}", "event: transition", f"data: {data or n}", ""]


def test_a_dropped_stream_resumes_after_the_last_event_id_and_reports_the_drop_once() -> None:
    stream = FakeStream(
        ["retry: 500", *frame(1), *frame(2), Dropped("connection reset")],
        [Dropped("connection refused")],
        [*frame(3, "final")],
    )
    drops: list[str] = []
    events = list(stream.follow(on_drop=drops.append))
    assert [e.id for e in events] == ["1", "2", "3"]
    assert stream.sent == ["", "2", "2"]
    assert stream.sleeps == [0.5, 0.5]
    assert drops == ["connection reset"]


def test_a_stream_that_ends_before_a_final_event_is_resumed() -> None:
    stream = FakeStream([*frame(1)], [*frame(2, "final")])
    assert [e.data for e in stream.follow()] == ["1", "final"]
    assert stream.sent == ["", "1"]


def test_the_stream_is_over_when_the_service_ends_it_after_a_final_event() -> None:
    """An earlier final event (before a retry) does not end it: only the service's end does."""
    stream = FakeStream([*frame(1, "final"), *frame(2), *frame(3, "final")])
    assert [e.id for e in stream.follow()] == ["1", "2", "3"]
    assert stream.sent == [""]


def test_a_first_connection_that_fails_fails_at_once() -> None:
    stream = FakeStream([Dropped("connection refused")])
    with pytest.raises(Dropped, match="refused"):
        list(stream.follow())
    assert stream.sleeps == []


def test_a_service_gone_for_longer_than_the_patience_gives_up() -> None:
    stream = FakeStream([*frame(1), Dropped("connection reset")])
    with pytest.raises(Dropped, match=r"connection refused \(gave up after 10 s\)"):
        list(stream.follow(give_up_after=10))
    assert 10 < sum(stream.sleeps) <= 12


def test_the_connection_is_closed_when_the_reader_stops() -> None:
    closed: list[bool] = []

    def connect(last: str) -> Generator[str, None, None]:
        try:
            yield from frame(1)
            yield from frame(2)
        finally:
            closed.append(True)

    events = follow(connect)
    assert next(events).id == "1"
    events.close()
    assert closed == [True]
