"""The dead-letter queues on RabbitMQ: count, look at, replay (DeadLetterQueues port)."""

from __future__ import annotations

import contextlib

from aio_pika.abc import AbstractIncomingMessage

from adapters.deadletters import letter, replay_headers
from adapters.queues import CREATE_DLQ, DISPATCH_DLQ, ORIGINS
from adapters.rabbitmq.broker import RabbitMQ
from adapters.timeouts import AMQP_RPC_SECONDS
from application.deadletters import DeadLetter, Decide, Replayed, Verdict

QUEUES = (CREATE_DLQ, DISPATCH_DLQ)


class RabbitDeadLetters:
    """Messages are taken with basic.get on a channel of their own and settled one by one;
    whatever is not acknowledged when the channel closes goes back to its queue."""

    def __init__(self, broker: RabbitMQ) -> None:
        self._broker = broker

    async def counts(self) -> dict[str, int]:
        async with self._broker.channel() as channel:
            return {q: (await channel.declare_queue(q, passive=True, timeout=AMQP_RPC_SECONDS))
                    .declaration_result.message_count or 0 for q in QUEUES}

    async def peek(self, limit: int) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        async with self._broker.channel() as channel:
            for name in QUEUES:
                queue = await channel.declare_queue(name, passive=True)
                held: list[AbstractIncomingMessage] = []
                while len(held) < limit and (message := await queue.get(fail=False)):
                    held.append(message)
                    found.append(_letter(name, message))
                for message in held:
                    await message.nack(requeue=True)
        return found

    async def replay(self, limit: int, decide: Decide) -> list[Replayed]:
        done: list[Replayed] = []
        async with self._broker.channel() as channel:
            for name in QUEUES:
                queue = await channel.declare_queue(name, passive=True)
                # only what is there now: a replayed message refused again comes back to this
                # queue, and must not be taken a second time by the same replay
                there = queue.declaration_result.message_count or 0
                kept: list[AbstractIncomingMessage] = []
                try:
                    while len(done) < limit and there > 0 and (
                            message := await queue.get(fail=False)):
                        there -= 1
                        dead = _letter(name, message)
                        verdict, why = await decide(dead)
                        if verdict is Verdict.REPLAY:
                            await self._broker.send(
                                ORIGINS[name], message.body, persistent=True,
                                message_id=message.message_id,
                                correlation_id=message.correlation_id,
                                reply_to=message.reply_to, content_type=message.content_type,
                                headers=replay_headers(message.headers or {}))
                        if verdict is Verdict.KEEP:
                            kept.append(message)  # put back at the end, not taken again now
                        else:
                            await message.ack()
                        done.append(Replayed(dead, verdict, why))
                finally:
                    for message in kept:
                        with contextlib.suppress(Exception):
                            await message.nack(requeue=True)
        return done


def _letter(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    return letter(queue, message.body, message.message_id, dict(message.headers or {}))
