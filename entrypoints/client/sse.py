"""Server-Sent Events: a line parser, and a reader that resumes after a dropped connection."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

#: Reconnection delay until the server says otherwise (`retry:`), and the most it may ask for.
DEFAULT_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str = ""


class Parser:
    """The event-stream interpretation of the WHATWG HTML standard, one line at a time.

    The last event id and the retry delay outlive a connection: a reader sends the id back as
    `Last-Event-ID` when it reconnects.
    """

    def __init__(self) -> None:
        self.last_id = ""
        self.retry_seconds = DEFAULT_RETRY_SECONDS
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """The event that `line` completes (a blank line ends one), or None."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: keep-alive
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\x00" not in value:
            self.last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry_seconds = min(int(value) / 1000, MAX_RETRY_SECONDS)
        return None

    def end_of_stream(self) -> None:
        """An event cut off by the end of the stream is not an event."""
        self._event, self._data = "", []

    def _dispatch(self) -> Event | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return Event(data="\n".join(data), event=event, id=self.last_id)


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Every complete event in `lines`."""
    parser = Parser()
    for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event


class Dropped(Exception):
    """The connection broke (or the service answered 5xx): worth resuming after a pause."""


#: Opens the stream, sending `Last-Event-ID` when given; yields its lines; raises Dropped.
Connect = Callable[[str], Generator[str, None, None]]


def follow(connect: Connect, *, finished: Callable[[Event], bool] = lambda event: False,
           give_up_after: float = 30.0, on_drop: Callable[[str], None] = lambda why: None,
           sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> Generator[Event, None, None]:
    """The events of a stream, resumed with `Last-Event-ID` whenever it breaks, or ends
    before an event that is `finished` (a stream the service ends on purpose, after the last
    event there will be). The first connection must succeed (a wrong address fails at once);
    after that, a service that stays unreachable for `give_up_after` seconds raises Dropped.
    `on_drop` hears once per outage why the stream was lost."""
    parser = Parser()
    connected_once = False
    lost_since: float | None = None
    last: Event | None = None
    while True:
        lines = connect(parser.last_id)
        try:
            for line in lines:
                connected_once, lost_since = True, None
                event = parser.feed(line)
                if event is not None:
                    last = event
                    yield event
            if last is not None and finished(last):
                return
            why = "the service ended the stream early"
        except Dropped as exc:
            if not connected_once:
                raise
            why = str(exc)
        finally:
            lines.close()  # also when the caller stops reading: the connection goes at once
        parser.end_of_stream()
        if lost_since is None:
            lost_since = clock()
            on_drop(why)
        elif clock() - lost_since > give_up_after:
            raise Dropped(f"{why} (gave up after {give_up_after:.0f} s)")
        sleep(parser.retry_seconds)
