"""Steady streams of task creation, over HTTP and over the intake queue, recording each answer."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import httpx
import msgspec


class HttpLoad:
    """POST /tasks at a steady pace, whatever the answers take: one request every `every`
    seconds, each on its own, so that a slow answer does not slow the pace."""

    def __init__(self, base_url: str, every: float = 0.05) -> None:
        self.base_url, self.every = base_url, every
        self.accepted: list[str] = []
        self.refused = 0  # 503 problems
        self.unanswered: list[str] = []  # transport errors and timeouts
        self.wrong: list[str] = []  # any other answer

    async def run(self, seconds: float) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=15,
                                     limits=httpx.Limits(max_connections=400)) as http:
            sent: list[asyncio.Task[None]] = []
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                i += 1
                sent.append(asyncio.create_task(self._one(http, f"http {i}")))
                await asyncio.sleep(self.every)
            await asyncio.gather(*sent)

    async def _one(self, http: httpx.AsyncClient, title: str) -> None:
        try:
            answer = await http.post("/tasks", json={"title": title})
        except httpx.HTTPError as exc:
            self.unanswered.append(f"{title}: {exc!r}")
            return
        if answer.status_code == 201:
            self.accepted.append(answer.json()["id"])
        elif (answer.status_code == 503
              and answer.headers.get("content-type") == "application/problem+json"):
            self.refused += 1
        else:
            self.wrong.append(f"{title}: {answer.status_code} {answer.text[:200]}")


class IntakeLoad:
    """Publishes to `tasks.create` through one node, each message with its own message_id (the
    idempotency key); a message counts as accepted once RabbitMQ confirmed it."""

    def __init__(self, url: str, every: float = 0.2) -> None:
        self.url, self.every = url, every
        self.accepted: list[str] = []  # titles
        self.failed: list[str] = []

    async def run(self, seconds: float) -> None:
        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                i += 1
                await self._one(channel, f"intake {i}")
                await asyncio.sleep(self.every)
        finally:
            await connection.close()

    async def _one(self, channel: aio_pika.abc.AbstractChannel, title: str) -> None:
        message = aio_pika.Message(msgspec.json.encode({"title": title}),
                                   content_type="application/json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   message_id=str(uuid.uuid4()))
        try:  # mandatory: a message no queue took is returned, not confirmed as if delivered
            await channel.default_exchange.publish(message, routing_key="tasks.create",
                                                   mandatory=True, timeout=10)
        except Exception as exc:
            self.failed.append(f"{title}: {exc!r}")
            return
        self.accepted.append(title)
