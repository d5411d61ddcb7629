"""What a person reads: aligned columns, local and relative times, colour only on a terminal."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

FINAL = frozenset({"completed", "error"})
_COLOURS = {"new": "36", "in_progress": "33", "completed": "32", "error": "31",
            "bold": "1", "dim": "2"}
#: C0 and C1 control characters (and DEL): a title must not move the cursor or clear the screen.
_CONTROLS = {c: "\N{REPLACEMENT CHARACTER}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS_BUT_NEWLINES = {c: r for c, r in _CONTROLS.items() if c != ord("\n")}


class Out:
    """Standard output, a line at a time (flushed: a watcher sees each change as it happens)."""

    def __init__(self, as_json: bool, stream: TextIO | None = None,
                 colour: bool | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        if colour is None:
            colour = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.colour = colour

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def lines(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.line(text)

    def document(self, value: Any) -> None:
        """One JSON document on one line."""
        self.line(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def paint(self, style: str, text: str) -> str:
        """`text` in a status's colour (or bold, dim) on a terminal; as it is otherwise."""
        code = _COLOURS.get(style)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code and text else text


def table(out: Out, header: Sequence[str], rows: Iterable[Sequence[str]],
          styles: Sequence[str | None] = (), right: frozenset[int] = frozenset()) -> list[str]:
    """Columns two spaces apart, as wide as their widest cell. `styles[i]` paints column i:
    a style name, or "status" for the cell's own status colour."""
    rows = [list(row) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    last = len(widths) - 1

    def render(cells: Sequence[str], paint: bool) -> str:
        parts = []
        for i, cell in enumerate(cells):
            padded = cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            text = padded.rstrip() if i == last else padded
            style = styles[i] if i < len(styles) and paint else None
            parts.append(out.paint(cell.strip() if style == "status" else style or "", text))
        return "  ".join(parts).rstrip()

    return [out.paint("bold", render(header, paint=False)),
            *(render(row, paint=True) for row in rows)]


def clean(text: str | None, *, newlines: bool = False) -> str:
    """Text from the service made safe to print: control characters become visible marks."""
    return (text or "").translate(_CONTROLS_BUT_NEWLINES if newlines else _CONTROLS)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def moment(text: str) -> datetime:
    """An RFC 3339 timestamp from the service, in the local time zone."""
    return datetime.fromisoformat(text).astimezone()


def clock(at: datetime, now: datetime) -> str:
    """Time of day when it is today, else the date as well."""
    return at.strftime("%H:%M:%S" if at.date() == now.date() else "%Y-%m-%d %H:%M:%S")


def span(seconds: float) -> str:
    """A duration as people say it: 12 s, 3 min, 5 h, 2 d."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def ago(at: datetime, now: datetime) -> str:
    seconds = (now - at).total_seconds()
    return "just now" if seconds < 1 else f"{span(seconds)} ago"


def until(at: datetime, now: datetime) -> str:
    """"in 5 min" for a time to come, "5 min ago" for one past."""
    seconds = (at - now).total_seconds()
    if seconds < 1:
        return ago(at, now)
    if not 3_600 <= seconds < 172_800:
        return f"in {span(seconds)}"
    minutes = int(seconds // 60) % 60  # "in 1 h" would undersell 1 h 59 min
    return f"in {int(seconds // 3_600)} h" + (f" {minutes} min" if minutes else "")


def count(n: int) -> str:
    return f"{n:,}"
