"""A loopback TCP proxy for partition tests: forward, reset, blackhole or swallow replies."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

HOST = "127.0.0.1"
CHUNK = 64 * 1024
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "amqp": 5672}


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close with a TCP RST (SO_LINGER 0), so the peer sees a reset, not an orderly EOF."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """A client connection and its upstream. Once broken, it never forwards a byte again."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.broken = False
        self.tail = b""  # the last bytes sent up, so that a marker split across chunks is found


class Proxy:
    """Stands between a process under test and one upstream, on its own event-loop thread.

    Every switch is applied on that loop before it returns, to current and new connections
    alike. A connection that lives through a blackhole, or that fires the trap, is *broken*:
    the bytes it dropped are gone, so it never forwards again, even after `pass_through()`;
    it stays open, in silence, until both its peers hang up, `pass_through(reset_existing=True)`
    resets it, or the proxy stops.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0  # known once started
        self.accepted = self.bytes_up = self.bytes_down = self.bytes_dropped = 0
        self.trap_fired = threading.Event()
        self._mode: Literal["pass", "reset", "blackhole"] = "pass"
        self._marker: bytes | None = None
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"proxy-to-{upstream_port}")
        self._server: asyncio.Server | None = None

    @classmethod
    def in_front_of(cls, url: str) -> Proxy:
        """A proxy to the service of a postgresql:// or amqp:// URL, or of a libpq conninfo."""
        if "://" not in url:
            params = conninfo_to_dict(url)
            return cls(str(params.get("host", HOST)), int(params.get("port") or 5432))
        parts = urlsplit(url)
        return cls(parts.hostname or HOST, parts.port or DEFAULT_PORTS[parts.scheme])

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (a conninfo stays a conninfo)."""
        if "://" not in url:
            return make_conninfo(url, host=HOST, port=str(self.port))
        parts = urlsplit(url)
        user = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{user}@{HOST}:{self.port}".lstrip("@")))

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def start(self) -> Proxy:
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._serve, HOST, 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Close the listener, reset every connection; the thread ends."""
        if not self._thread.is_alive():
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def pass_through(self, *, reset_existing: bool = False) -> None:
        """Forward both ways on new and unbroken connections; broken ones stay silent, unless
        `reset_existing` resets them so that their clients see the failure at once."""
        async def change() -> None:
            self._mode = "pass"
            if reset_existing:
                self._reset(link for link in self._links if link.broken)
        self._run(change())

    heal = pass_through  # reads better after a partition

    def reset(self) -> None:
        """Reset every connection with a TCP RST; new ones are reset as soon as accepted."""
        async def change() -> None:
            self._mode = "reset"
            self._reset(self._links)
        self._run(change())

    def blackhole(self) -> None:
        """Forward nothing either way and close nothing; what arrives is read and discarded.
        New connections are accepted and never reach the upstream."""
        async def change() -> None:
            self._mode = "blackhole"
            for link in self._links:
                link.broken = True
        self._run(change())

    def drop_replies_after(self, marker: bytes) -> None:
        """Arm a one-shot trap: the first connection to send `marker` up breaks right after
        forwarding it (the upstream gets it, its client never hears back); `trap_fired` is set."""
        async def change() -> None:
            self._marker = marker
            self.trap_fired.clear()
            for link in self._links:
                link.tail = b""
        self._run(change())

    def _reset(self, links: Iterable[_Link]) -> None:
        """Reset both sides of `links`; they stop counting as open at once."""
        for link in list(links):
            _rst(link.client)
            _rst(link.upstream)
            self._links.discard(link)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._mode == "reset":
            _rst(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            if self._mode == "blackhole":
                link.broken = True
                await self._pump(link, reader, None, up=True)
                return
            try:
                from_upstream, link.upstream = await asyncio.open_connection(*self.upstream)
            except OSError:
                _rst(writer)
                return
            if writer.transport.is_closing():  # reset while connecting
                _rst(link.upstream)
                return
            await asyncio.gather(self._pump(link, reader, link.upstream, up=True),
                                 self._pump(link, from_upstream, writer, up=False))
        finally:
            self._links.discard(link)
            writer.close()
            if link.upstream is not None:
                link.upstream.close()

    async def _pump(self, link: _Link, src: asyncio.StreamReader,
                    dst: asyncio.StreamWriter | None, *, up: bool) -> None:
        """Copy `src` to `dst` while the link is whole, discard once broken; until EOF or error.
        Flow control through `drain` bounds what is held; discarded bytes are not kept."""
        try:
            while data := await src.read(CHUNK):
                if link.broken or dst is None:
                    self.bytes_dropped += len(data)
                    continue
                if up:  # counted and checked first, so the test thread never sees stale state
                    self.bytes_up += len(data)
                    self._spring_trap(link, data)
                else:
                    self.bytes_down += len(data)
                dst.write(data)
                await dst.drain()
        except OSError:  # a peer reset: the other side learns it the same way
            if not link.broken:
                self._reset([link])
            return
        if not link.broken and dst is not None:
            with contextlib.suppress(OSError):
                dst.write_eof()

    def _spring_trap(self, link: _Link, data: bytes) -> None:
        """If `data` holds the marker, break the link: `data` is the last chunk it forwards."""
        if self._marker is None:
            return
        window = link.tail + data
        if self._marker in window:
            link.broken = True
            self._marker = None
            self.trap_fired.set()
            return
        link.tail = window[max(0, len(window) - len(self._marker) + 1):]

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        self._reset(self._links)
        serving = asyncio.all_tasks() - {asyncio.current_task()}
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)
        await self._server.wait_closed()
