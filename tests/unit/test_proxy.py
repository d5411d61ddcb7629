"""The test proxy forwards, resets, blackholes and swallows replies, in front of a local echo."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.support.proxy import Proxy

SILENCE = 0.3  # seconds a client waits to conclude that nothing is coming
Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[[], Awaitable[Client]]


class Echo:
    """A local upstream that answers every chunk with itself and keeps what it received."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        with contextlib.suppress(ConnectionResetError):
            while data := await reader.read(1024):
                self.received += data
                writer.write(data)
        writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[tuple[Echo, int]]:
    upstream = Echo()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    yield upstream, server.sockets[0].getsockname()[1]
    server.close()
    for writer in upstream.writers:
        writer.close()


@pytest.fixture
def upstream(echo: tuple[Echo, int]) -> Echo:
    return echo[0]


@pytest.fixture
def proxy(echo: tuple[Echo, int]) -> Iterator[Proxy]:
    with Proxy("127.0.0.1", echo[1]) as running:
        yield running


@pytest.fixture
async def connect(proxy: Proxy) -> AsyncIterator[Connect]:
    """Opens clients to the proxy; all are closed at the end."""
    opened: list[asyncio.StreamWriter] = []

    async def open_client() -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        opened.append(writer)
        return reader, writer

    yield open_client
    for writer in opened:
        writer.close()


async def exchange(client: Client, data: bytes) -> bytes:
    reader, writer = client
    writer.write(data)
    return await asyncio.wait_for(reader.readexactly(len(data)), 2)


async def assert_silent(client: Client, data: bytes = b"anyone there?") -> None:
    """Nothing comes back, and the connection is not closed either."""
    reader, writer = client
    writer.write(data)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(100), SILENCE)


async def read_from_new(connect: Connect) -> bytes:
    reader, _ = await connect()
    return await asyncio.wait_for(reader.read(100), 2)


async def assert_reset(client: Client) -> None:
    reader, writer = client
    writer.write(b"hello?")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2)


async def assert_cut(client: Client) -> None:
    """The connection ends at once, by a reset or an EOF."""
    reader, writer = client
    writer.write(b"hello?")
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(100), 2) == b""


async def test_passing_through_echoes_both_ways_and_counts(connect: Connect, proxy: Proxy) -> None:
    client = await connect()
    assert await exchange(client, b"ping") == b"ping"
    assert await exchange(client, b"pong!") == b"pong!"
    assert (proxy.accepted, proxy.open_connections) == (1, 1)
    assert (proxy.bytes_up, proxy.bytes_down, proxy.bytes_dropped) == (9, 9, 0)


async def test_a_reset_cuts_current_connections_and_refuses_new_ones(connect: Connect,
                                                                     proxy: Proxy) -> None:
    client = await connect()
    assert await exchange(client, b"ping") == b"ping"
    proxy.reset()
    await assert_reset(client)
    with pytest.raises(ConnectionResetError):  # at connect already, or at the first read
        await read_from_new(connect)
    assert (proxy.accepted, proxy.open_connections) == (2, 0)


async def test_a_blackhole_holds_current_and_new_connections_open_in_silence(
    connect: Connect, proxy: Proxy, upstream: Echo
) -> None:
    client = await connect()
    assert await exchange(client, b"ping") == b"ping"
    proxy.blackhole()
    await assert_silent(client, b"lost")
    await assert_silent(await connect(), b"lost too")
    assert proxy.open_connections == 2
    assert bytes(upstream.received) == b"ping"
    assert proxy.bytes_dropped == len(b"lost") + len(b"lost too")


async def test_after_a_blackhole_new_connections_work_and_old_ones_stay_silent(
    connect: Connect, proxy: Proxy
) -> None:
    old = await connect()
    assert await exchange(old, b"ping") == b"ping"  # the proxy has it: an existing connection
    proxy.blackhole()
    proxy.pass_through()
    assert await exchange(await connect(), b"fresh") == b"fresh"
    await assert_silent(old)


async def test_healing_with_reset_existing_cuts_the_blackholed_connections(
    connect: Connect, proxy: Proxy
) -> None:
    old = await connect()
    assert await exchange(old, b"ping") == b"ping"
    proxy.blackhole()
    proxy.heal(reset_existing=True)
    await assert_reset(old)
    assert await exchange(await connect(), b"fresh") == b"fresh"


async def test_the_trap_lets_the_marker_through_and_swallows_the_reply(
    connect: Connect, proxy: Proxy, upstream: Echo
) -> None:
    trapped, bystander = await connect(), await connect()
    proxy.drop_replies_after(b"COMMIT")
    assert await exchange(trapped, b"BEGIN") == b"BEGIN"
    assert not proxy.trap_fired.is_set()
    await assert_silent(trapped, b"COMMIT")
    assert proxy.trap_fired.is_set()
    assert bytes(upstream.received).endswith(b"COMMIT")
    assert await exchange(bystander, b"COMMIT") == b"COMMIT"  # one shot, one connection
    assert await exchange(await connect(), b"COMMIT") == b"COMMIT"


async def test_the_trap_finds_a_marker_split_across_two_chunks(
    connect: Connect, proxy: Proxy, upstream: Echo
) -> None:
    client = await connect()
    proxy.drop_replies_after(b"COMMIT")
    assert await exchange(client, b"xCOM") == b"xCOM"  # echoed: went up as a chunk of its own
    await assert_silent(client, b"MITy")
    assert proxy.trap_fired.is_set()
    assert bytes(upstream.received) == b"xCOMMITy"


async def test_stopping_closes_every_connection_and_ends_the_thread(echo: tuple[Echo, int]) -> None:
    before = set(threading.enumerate())
    with Proxy("127.0.0.1", echo[1]) as proxy:
        whole = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await exchange(whole, b"ping") == b"ping"
        proxy.blackhole()
        silent = await asyncio.open_connection("127.0.0.1", proxy.port)
        await assert_silent(silent)
    await assert_cut(whole)
    await assert_cut(silent)
    assert set(threading.enumerate()) == before
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", proxy.port)
    for _, writer in (whole, silent):
        writer.close()


def test_urls_point_at_the_proxy_and_keep_everything_else() -> None:
    with Proxy.in_front_of("amqp://guest:secret@127.0.0.1:5672/vh") as proxy:
        assert proxy.upstream == ("127.0.0.1", 5672)
        assert proxy.url_for("amqp://guest:secret@127.0.0.1:5672/vh") == \
            f"amqp://guest:secret@127.0.0.1:{proxy.port}/vh"
        conninfo = proxy.url_for("host=127.0.0.1 port=5432 user=postgres dbname=t")
        assert f"port={proxy.port}" in conninfo and "dbname=t" in conninfo
