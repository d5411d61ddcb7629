"""The in-memory broker's dead-letter queues (DeadLetterQueues port) for `tasks dev` and tests."""

from __future__ import annotations

from adapters.deadletters import letter, replay_headers
from adapters.memory.broker import InMemoryBroker, InMemoryDelivery
from adapters.queues import CREATE_DLQ, DISPATCH_DLQ, ORIGINS
from application.deadletters import DeadLetter, Decide, Replayed, Verdict

QUEUES = (CREATE_DLQ, DISPATCH_DLQ)


class InMemoryDeadLetters:
    def __init__(self, broker: InMemoryBroker) -> None:
        self._broker = broker

    async def counts(self) -> dict[str, int]:
        return {q: self._broker.queue(q).qsize() for q in QUEUES}

    async def peek(self, limit: int) -> list[DeadLetter]:
        found = []
        for name in QUEUES:
            held = self._take_all(name)
            found += [_letter(name, d) for d in held[:limit]]
            for delivery in held:
                self._broker.queue(name).put_nowait(delivery)
        return found

    async def replay(self, limit: int, decide: Decide) -> list[Replayed]:
        done: list[Replayed] = []
        for name in QUEUES:
            held = self._take_all(name)
            kept = []
            for delivery in held:
                if len(done) >= limit:
                    kept.append(delivery)
                    continue
                dead = _letter(name, delivery)
                verdict, why = await decide(dead)
                if verdict is Verdict.REPLAY:
                    self._broker.put(ORIGINS[name], delivery.body,
                                     message_id=delivery.message_id,
                                     correlation_id=delivery.correlation_id,
                                     reply_to=delivery.reply_to,
                                     headers=replay_headers(delivery.headers))
                elif verdict is Verdict.KEEP:
                    kept.append(delivery)
                done.append(Replayed(dead, verdict, why))
            for delivery in kept:
                self._broker.queue(name).put_nowait(delivery)
        return done

    def _take_all(self, name: str) -> list[InMemoryDelivery]:
        queue = self._broker.queue(name)
        return [queue.get_nowait() for _ in range(queue.qsize())]


def _letter(queue: str, delivery: InMemoryDelivery) -> DeadLetter:
    return letter(queue, delivery.body, delivery.message_id, delivery.headers)
