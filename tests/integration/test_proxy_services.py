"""The test proxy partitions real PostgreSQL and RabbitMQ clients, and the partition heals."""

from __future__ import annotations

import asyncio

import aio_pika
import psycopg
import pytest

from tests.support.proxy import Proxy

from .waiting import eventually


async def select_one(url: str) -> object:
    async with await psycopg.AsyncConnection.connect(url, connect_timeout=2) as conn:
        cursor = await conn.execute("SELECT 1")
        return await cursor.fetchone()


async def test_a_blackhole_hangs_postgres_clients_until_healed(database_url: str) -> None:
    with Proxy.in_front_of(database_url) as proxy:
        url = proxy.url_for(database_url)
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)

        proxy.blackhole()
        query = asyncio.create_task(conn.execute("SELECT 1"))
        done, _ = await asyncio.wait({query}, timeout=1)
        assert not done, "a query got through the blackhole"
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            await select_one(url)  # the new connection is accepted, then never answered

        proxy.heal()
        assert await select_one(url) == (1,)
        done, _ = await asyncio.wait({query}, timeout=0.5)
        assert not done, "the old connection should stay partitioned"

        proxy.heal(reset_existing=True)
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(query, 5)
        await conn.close()


async def publish(channel: aio_pika.abc.AbstractChannel) -> None:
    """Publish to a queue-less key: with confirms on, this returns once the broker has it."""
    await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key="nowhere")


async def test_a_blackhole_hangs_rabbitmq_publishers_until_healed(amqp_url: str) -> None:
    with Proxy.in_front_of(amqp_url) as proxy:
        url = proxy.url_for(amqp_url)
        old = await aio_pika.connect(url)
        channel = await old.channel(publisher_confirms=True)
        await asyncio.wait_for(publish(channel), 5)

        proxy.blackhole()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(publish(channel), 1)

        proxy.heal(reset_existing=True)

        async def old_channel_is_closed() -> bool:
            return channel.is_closed

        await eventually(old_channel_is_closed, "the reset to reach the old channel", timeout=5)
        await old.close()
        new = await asyncio.wait_for(aio_pika.connect(url), 5)
        try:
            await asyncio.wait_for(publish(await new.channel(publisher_confirms=True)), 5)
        finally:
            await new.close()
