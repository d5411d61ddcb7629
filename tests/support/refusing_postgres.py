"""A stand-in PostgreSQL server that asks for a password and refuses it, as a real one does."""

from __future__ import annotations

import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
CLEARTEXT_PASSWORD = 3


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _error(user: str) -> bytes:
    fields = [(b"S", "FATAL"), (b"V", "FATAL"), (b"C", "28P01"),
              (b"M", f'password authentication failed for user "{user}"')]
    return _message(b"E", b"".join(k + v.encode() + b"\0" for k, v in fields) + b"\0")


class _Refuse(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        sock.settimeout(10)
        reader = sock.makefile("rb")
        while True:  # SSL / GSS encryption requests are declined; then the startup message
            (length,) = struct.unpack("!I", reader.read(4))
            body = reader.read(length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                sock.sendall(b"N")
                continue
            break
        words = body[4:].split(b"\0")
        params = dict(zip(words[::2], words[1::2], strict=False))
        user = params.get(b"user", b"postgres").decode()
        sock.sendall(_message(b"R", struct.pack("!I", CLEARTEXT_PASSWORD)))
        kind = reader.read(1)
        if kind == b"p":  # the password: read and refused, whatever it is
            (length,) = struct.unpack("!I", reader.read(4))
            reader.read(length - 4)
        sock.sendall(_error(user))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def refusing_postgres() -> Iterator[int]:
    """A server on 127.0.0.1 that refuses every password; yields its port.

    The shared test server trusts every local connection, so a wrong password cannot be had
    from it. This one speaks just enough of the PostgreSQL protocol (version 3) for libpq to go
    through a real password exchange and get a real server's refusal: an ErrorResponse with
    SQLSTATE 28P01 and PostgreSQL's own wording. psycopg raises from it exactly what it raises
    from a real server (the texts match those recorded against one)."""
    server = _Server(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, name="refusing-postgres", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
