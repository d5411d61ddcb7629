"""What the client prints for people: columns, times, colours, and lines per change."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from entrypoints.client.output import Out, ago, clean, clock, moment, shorten, span, table, until
from entrypoints.client.views import change_line, list_table, task_lines

NOW = datetime.fromisoformat("2026-11-28T12:00:00+00:00").astimezone()


def at(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat()


def plain() -> Out:
    return Out(as_json=False, stream=io.StringIO(), colour=False)


def task(**fields: object) -> dict[str, object]:
    return {"id": "01a21f4d-f8c0-7d76-8fd6-4dfbadcc6d71", "title": "Resize image",
            "description": None, "payload": {"image_id": 42}, "status": "completed",
            "attempts": 1, "error": None, "source": "api", "created_at": at(65),
            "updated_at": at(3), "started_at": at(60), "finished_at": at(3), **fields}


def test_columns_line_up_on_the_widest_cell_with_numbers_on_the_right() -> None:
    lines = table(plain(), ["NAME", "N"], [["a", "1"], ["longer", "120"]], right=frozenset({1}))
    assert lines == ["NAME      N", "a         1", "longer  120"]


def test_colour_only_when_asked_and_never_in_the_widths() -> None:
    coloured = Out(as_json=False, stream=io.StringIO(), colour=True)
    lines = table(coloured, ["STATUS", "X"], [["error", "1"]], styles=["status"])
    assert lines[1] == "\x1b[31merror \x1b[0m  1"
    assert table(plain(), ["STATUS", "X"], [["error", "1"]], styles=["status"])[1] == "error   1"


def test_an_output_that_is_no_terminal_gets_no_colour() -> None:
    assert Out(as_json=False, stream=io.StringIO()).colour is False


@pytest.mark.parametrize(("seconds", "said"), [
    (0.4, "just now"), (12, "12 s ago"), (59.9, "59 s ago"), (60, "1 min ago"),
    (3599, "59 min ago"), (7300, "2 h ago"), (86_400 * 3, "3 d ago"), (-5, "just now"),
])
def test_times_read_as_people_say_them(seconds: float, said: str) -> None:
    assert ago(NOW - timedelta(seconds=seconds), NOW) == said


def test_a_span_without_ago_for_ages() -> None:
    assert [span(s) for s in (0, 45, 600, 90_000)] == ["0 s", "45 s", "10 min", "1 d"]


def test_a_clock_shows_the_date_only_when_it_is_not_today() -> None:
    assert clock(NOW - timedelta(minutes=5), NOW) == (NOW - timedelta(minutes=5)).strftime(
        "%H:%M:%S")
    assert clock(NOW - timedelta(days=2), NOW).startswith(
        (NOW - timedelta(days=2)).strftime("%Y-%m-%d "))


def test_text_from_the_service_cannot_drive_the_terminal() -> None:
    assert clean("evil\x1b[2Jtitle\r\n") == "evil\ufffd[2Jtitle\ufffd\ufffd"
    assert clean("two\nlines", newlines=True) == "two\nlines"
    assert clean(None) == ""
    assert shorten("a" * 50, 10) == "aaaaaaaaa…"


def change(before: str | None, after: str, **fields: object) -> dict[str, object]:
    return {"from_status": before, "to_status": after, "at": at(0), "attempt": 1,
            "worker": "host-1", "reason": None, "actor": None, **fields}


def test_each_change_is_one_line_with_the_statuses_lined_up() -> None:
    time = clock(moment(at(0)), NOW)
    lines = [change_line(plain(), c, NOW) for c in (
        change(None, "new", attempt=0, worker=None),
        change("new", "in_progress"),
        change("in_progress", "error", task={"error": "emulated failure"},
               reason="emulated failure"),
        change("error", "new", worker=None, actor="ops", reason="flaky disk"),
    )]
    assert lines == [
        f"{time}  created     → new",
        f"{time}  new         → in_progress  attempt 1  worker host-1",
        f"{time}  in_progress → error        attempt 1  worker host-1  emulated failure",
        f"{time}  error       → new          attempt 1  by ops  flaky disk",
    ]


def test_a_cancel_request_is_a_note_on_a_running_task() -> None:
    line = change_line(plain(), change("in_progress", "in_progress", worker=None, actor="ops",
                                       reason="cancel requested: not needed"), NOW)
    assert line.endswith("  in_progress  cancel requested: not needed  by ops")


def test_a_cancelled_task_says_cancelled_in_its_last_line() -> None:
    line = change_line(plain(), change("in_progress", "error", reason="not needed", actor="ops",
                                       task={"error": "cancelled: not needed"}), NOW)
    assert line.endswith("→ error        attempt 1  worker host-1  by ops  cancelled: not needed")


def test_the_list_is_a_table_with_relative_times() -> None:
    lines = list_table(plain(), [task(), task(status="in_progress", title="x" * 60,
                                               attempts=12)], NOW)
    assert lines[0].split() == ["ID", "STATUS", "TITLE", "ATTEMPTS", "CREATED", "UPDATED"]
    assert lines[1].split("  ")[0] == "01a21f4d-f8c0-7d76-8fd6-4dfbadcc6d71"
    assert "1 min ago" in lines[1] and lines[1].endswith("3 s ago")
    assert "x" * 39 + "…" in lines[2]
    column = lines[0].index("STATUS")
    assert lines[1].index("completed") == lines[2].index("in_progress") == column
    assert lines[1].index("1 min ago") == lines[0].index("CREATED")


def test_show_prints_the_set_fields_the_payload_indented_and_the_history() -> None:
    history = [change(None, "new", attempt=0, worker=None, at=at(65)),
               change("new", "in_progress", at=at(60)),
               change("in_progress", "completed", at=at(3))]
    text = "\n".join(task_lines(plain(), task(description="first\nsecond"), history, NOW))
    assert text.startswith("Resize image\n  id        01a21f4d-f8c0-7d76-8fd6-4dfbadcc6d71\n"
                           "  status    completed  (1 attempt)\n")
    assert "error" not in text.split("History")[0]
    assert "  description\n    first\n    second\n" in text
    assert '  payload\n    {\n      "image_id": 42\n    }\n' in text
    rows = text.split("History\n")[1].splitlines()
    assert rows[0].split() == ["AT", "FROM", "TO", "ATTEMPT", "WORKER", "ACTOR", "REASON"]
    assert rows[3].split()[1:] == ["in_progress", "completed", "1", "host-1"]


def test_a_time_to_come_is_said_with_its_minutes_past_the_hour() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert [until(now + timedelta(seconds=s), now) for s in (45, 3599, 3600, 7199, 90_000,
                                                              200_000)] == [
        "in 45 s", "in 59 min", "in 1 h", "in 1 h 59 min", "in 25 h", "in 2 d"]
    assert until(now - timedelta(seconds=90), now) == "1 min ago"
