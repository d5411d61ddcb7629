"""The RabbitMQ adapter: one object per process, one FastStream broker, one connection, one
reconnect strategy.

- FastStream's RabbitBroker opens the connection (an aio-pika robust connection); its
  subscribers consume `tasks.create` and `tasks.dispatch` (consumers.py) and its publishers send
  dispatches, dead letters and replies, persistent and confirmed (endpoints.py). The AsyncAPI
  document is generated from those endpoints.
- Until the first connection succeeds, `start()` retries with the service's Backoff; after it,
  the robust connection reconnects by itself and restores each channel, its prefetch and its
  consumer, so the connect loop runs only once per process.
- Acknowledgements of one channel that are ready in the same turn of the loop go out as one
  (acks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from faststream.rabbit import RabbitBroker
from faststream.rabbit.message import RabbitMessage

from adapters.diagnosis import Diagnosis
from adapters.queues import DISPATCH, TRACE_HEADER
from adapters.rabbitmq import topology
from adapters.rabbitmq.acks import Acks
from adapters.rabbitmq.consumers import Consumer
from adapters.rabbitmq.endpoints import Endpoints
from adapters.rabbitmq.errors import diagnose
from adapters.timeouts import (
    AMQP_CONFIRM_SECONDS,
    AMQP_CONNECT_SECONDS,
    AMQP_HEARTBEAT_SECONDS,
    AMQP_RECONNECT_SECONDS,
    AMQP_RPC_SECONDS,
)
from application.backoff import Backoff
from application.messaging import DeliveryHandler
from application.model import Dispatch
from application.telemetry import NO_TRACING, Tracer
from domain.errors import ServiceUnavailable

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode


def with_heartbeat(url: str) -> str:
    """`url` asking for the service's AMQP heartbeat, unless it asks for one of its own."""
    try:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # a bad URL is reported when connecting
        return url
    if any(key == "heartbeat" for key, _ in query):
        return url
    query.append(("heartbeat", str(AMQP_HEARTBEAT_SECONDS)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def public(url: str) -> str:
    """`url` as the AsyncAPI document names the server: no user, password or query."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1],
                                                  query=""))


class RabbitMQ:
    """The MessageBroker port on RabbitMQ. Publishes are persistent and wait for the broker's
    confirm (`timeout` seconds at most); a message is handed to its handler in an asyncio task
    of its own, and one the handler leaves unsettled after raising is put back. A silent
    RabbitMQ is caught by the heartbeat and the connect timeout (adapters/timeouts.py); the
    robust connection then reconnects by itself. Making one connects nothing."""

    name = "broker"

    def __init__(self, url: str, timeout: float = AMQP_CONFIRM_SECONDS, *,
                 tracer: Tracer = NO_TRACING) -> None:
        self.faststream = RabbitBroker(
            with_heartbeat(url), timeout=AMQP_CONNECT_SECONDS, logger=None, app_id="tasks",
            reconnect_interval=AMQP_RECONNECT_SECONDS, graceful_timeout=None,
            specification_url=public(url))
        self.endpoints = Endpoints(self.faststream)
        self._url = url
        self._failure: Diagnosis | None = None  # why the last attempt to connect failed
        self._timeout = timeout
        self._tracer = tracer
        self._acks = Acks(_ack)
        self._consumers: list[Consumer] = []
        self._connection: AbstractRobustConnection | None = None
        self._topology: AbstractChannel | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()  # ends the connect loop between two attempts

    async def start(self) -> None:
        """Connect in the background: the process starts while RabbitMQ is still down."""
        self._closing.clear()
        self._connecting = asyncio.create_task(self._connect(), name="broker-connect")

    async def _connect(self) -> None:
        backoff, attempt = Backoff(first=0.5, cap=10.0), 1
        while True:
            try:
                connection = await self.faststream.connect()
                self._topology = await connection.channel()
                await topology.declare(self._topology)
                for consumer in self._consumers:  # one added meanwhile is taken too
                    await consumer.start()
                self._connection = connection
            except Exception as exc:  # noqa: BLE001 - every failure to connect is retried
                delay = backoff.next_delay()
                self._failure = diagnose(exc, self._url)
                log.warning("broker_unavailable", attempt=attempt, retry_in=round(delay, 2),
                            error=self._failure.line(self._url))
                await self._disconnect()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)
                if self._closing.is_set():
                    return
                attempt += 1
                continue
            self._failure = None
            log.info("broker_connected", attempt=attempt)
            return

    async def close(self) -> None:
        if self._connecting is not None:
            # an attempt cancelled halfway leaves aio-pika's own reconnect task behind, trying
            # on: the attempt under way gets a few seconds to end first
            self._closing.set()
            await asyncio.wait({self._connecting}, timeout=5.0)
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        await self._disconnect()

    async def _disconnect(self) -> None:
        """Consumers are stopped, not forgotten: the next attempt to connect starts them."""
        self._connection = self._topology = None
        for consumer in self._consumers:
            await consumer.stop()
        with contextlib.suppress(Exception):  # closing what never opened: nothing to do
            await self.faststream.stop()

    async def consume(self, queue: str, prefetch: int, handler: DeliveryHandler) -> None:
        subscriber, channel = self.endpoints.subscriber(queue)
        channel.prefetch_count = prefetch  # read when the subscriber opens its channel
        consumer = Consumer(queue, subscriber, handler, self._acks, self.send)
        self._consumers.append(consumer)
        if self._connection is not None:
            await consumer.start()

    async def stop_consuming(self) -> None:
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """All at once on the confirming channel, so that the confirms overlap."""
        await asyncio.gather(*(self._publish(d) for d in dispatches))

    async def _publish(self, dispatch: Dispatch) -> None:
        """A dispatch that carries a trace is sent inside a `publish` span of that trace, and
        the span's context goes in the headers (the body stays task id and attempt)."""
        properties: dict[str, Any] = {"message_id": f"{dispatch.task_id}:{dispatch.attempt}",
                                      "content_type": "application/json", "persistent": True}
        if dispatch.trace is None:
            await self.send(DISPATCH, _encode(dispatch), **properties)
            return
        with self._tracer.span(f"publish {DISPATCH}", dispatch.task_id, parent=dispatch.trace,
                               kind="producer", attributes={
                                   "messaging.system": "rabbitmq",
                                   "messaging.operation.type": "send",
                                   "messaging.destination.name": DISPATCH}) as span:
            body = _encode(msgspec.structs.replace(dispatch, trace=None))
            headers = {TRACE_HEADER: span.context} if span.context else {}
            await self.send(DISPATCH, body, headers=headers, **properties)

    async def send(self, queue: str, body: bytes, *, persistent: bool = False,
                   **properties: Any) -> None:
        """To `queue` through the default exchange, by its publisher when the service has one;
        returns once RabbitMQ confirmed it."""
        if self._connection is None:
            raise ServiceUnavailable("broker did not confirm: not connected")
        publisher = self.endpoints.publishers.get(queue)
        try:
            # the deadline is ours: FastStream 0.7 does not pass its `timeout` on to aio-pika
            async with asyncio.timeout(self._timeout):
                if publisher is not None:
                    await publisher.publish(body, persist=persistent, **properties)
                else:
                    await self.faststream.publish(body, queue, persist=persistent, **properties)
        except TimeoutError as exc:
            raise ServiceUnavailable("broker did not confirm in time") from exc
        except asyncio.CancelledError as exc:
            # aiormq cancels the confirms a dead connection still owed: that is an outage
            # for this caller, unless the caller itself is being cancelled
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise ServiceUnavailable("broker did not confirm: connection lost") from exc
        except Exception as exc:
            raise ServiceUnavailable(f"broker did not confirm: {type(exc).__name__}") from exc

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        """A short-lived channel of the one connection (for the dead-letter tools)."""
        connection = self._connection
        if connection is None or not connection.connected.is_set():
            raise ServiceUnavailable("broker unreachable")
        channel = await asyncio.wait_for(connection.channel(), AMQP_RPC_SECONDS)
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def check(self) -> None:
        """Health probe: connected (the robust connection reconnects on its own)."""
        connection = self._connection
        if connection is None and self._failure is not None:
            raise ServiceUnavailable(self._failure.short())
        if connection is None or not connection.connected.is_set():
            raise ServiceUnavailable("not connected (connecting)" if connection is None
                                     else "connection lost (reconnecting)")


async def _ack(message: RabbitMessage, multiple: bool) -> None:
    await message.ack(multiple=multiple)
