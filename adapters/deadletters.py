"""What a dead letter says about itself: reason, time, and (for a dispatch) its task."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from adapters.queues import CREATE_DLQ, DEAD_LETTERED_AT, REASON_HEADER
from application.deadletters import DeadLetter
from application.model import Dispatch

_dispatch = msgspec.json.Decoder(Dispatch).decode
#: Headers a replayed message does not carry back: they describe its dead-lettering.
DEATH_HEADERS = frozenset({REASON_HEADER, DEAD_LETTERED_AT, "x-death", "x-delivery-count",
                           "x-first-death-exchange", "x-first-death-queue",
                           "x-first-death-reason", "x-last-death-exchange",
                           "x-last-death-queue", "x-last-death-reason"})


def letter(queue: str, body: bytes, message_id: str | None,
           headers: Mapping[str, object]) -> DeadLetter:
    """Ours say why in a header; RabbitMQ's own (a delivery limit) in `x-death`."""
    reason, at = _text(headers.get(REASON_HEADER)), _moment(headers.get(DEAD_LETTERED_AT))
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        death = deaths[0]
        reason = reason or f"RabbitMQ: {_text(death.get('reason'))} (delivered " \
                           f"{_text(death.get('count'))} times)"
        at = at or _moment(death.get("time"))
    try:
        dispatch = None if queue == CREATE_DLQ else _dispatch(body)
    except msgspec.DecodeError:
        dispatch = None
    return DeadLetter(queue=queue, intake=queue == CREATE_DLQ, body=body, message_id=message_id,
                      reason=reason, dead_lettered_at=at, dispatch=dispatch)


def replay_headers(headers: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in headers.items() if k not in DEATH_HEADERS}


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _text(value)
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
