"""What a failed attempt to connect to RabbitMQ means for TASKS_RABBITMQ_URL, in one line."""

from __future__ import annotations

import socket
import urllib.parse

from aio_pika.exceptions import AuthenticationError, InvalidFrameError, ProbableAuthenticationError

from adapters.diagnosis import Diagnosis, first_line, scrub

SETTING = "TASKS_RABBITMQ_URL"


def _parts(url: str) -> tuple[str, str, str]:
    """(user, host:port, vhost) as aio-pika reads them from the URL."""
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username or "guest")
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    vhost = urllib.parse.unquote(parts.path[1:]) or "/"
    return user, f"{parts.hostname or 'localhost'}:{port}", vhost


def diagnose(exc: BaseException, url: str) -> Diagnosis:
    """The diagnosis of an exception raised while connecting (aio-pika's and aiormq's texts)."""
    user, where, vhost = _parts(url)
    text = scrub(str(exc))

    def say(summary: str, detail: str, fix: str, permanent: bool = False) -> Diagnosis:
        return Diagnosis(SETTING, summary, detail, fix, permanent)

    if isinstance(exc, ProbableAuthenticationError | AuthenticationError) \
            or "ACCESS_REFUSED" in text:
        return say("authentication failed", f'authentication failed for user "{user}"',
                   "check the user name and password in it (RabbitMQ's guest user may only "
                   "connect from localhost)", permanent=True)
    if isinstance(exc, InvalidFrameError) and "Connection.Close" in text:
        # RabbitMQ closes the connection instead of opening the vhost; aiormq loses its reason
        # (a missing vhost, or one this user has no permission on) while parsing the frame
        return say(f'vhost "{vhost}" does not exist, or this user may not use it',
                   f'vhost "{vhost}" does not exist (or user "{user}" has no permission on it)',
                   f"create it (rabbitmqctl add_vhost {vhost}; rabbitmqctl set_permissions "
                   f"-p {vhost} {user} '.*' '.*' '.*') or correct the vhost (the URL's path)",
                   permanent=True)
    if "inequivalent arg 'x-queue-type'" in text and "current is 'classic'" in text:
        queue = text.split("for queue '", 1)[-1].split("'", 1)[0]
        return say(f"{queue} is a classic queue; a cluster needs a quorum queue",
                   f"the queue {queue} exists as a classic queue, and with several nodes named "
                   "the service declares it as a quorum queue",
                   "move it over without losing a message as docs/clusters.md says (\"Moving "
                   "the intake to a quorum queue\"), or name one node only", permanent=True)
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in text \
            or "Connection refused" in text:
        return say("connection refused", f"connection refused at {where}",
                   "is RabbitMQ running there, and are the host and port right?")
    if isinstance(exc, socket.gaierror) or "Name or service not known" in text \
            or "name resolution" in text:
        return say("unknown host", f"unknown host {where.rsplit(':', 1)[0]!r}",
                   "check the host name in it")
    if "unexpectedly closed" in text:
        return say("closed during the handshake", f"{where} closed the connection at once",
                   "is that a RabbitMQ (AMQP) port? The usual one is 5672")
    if isinstance(exc, TimeoutError):
        return say("no answer (timed out)", f"no answer from {where} in time",
                   "is the host reachable from here (network, firewall)?")
    return say(first_line(text, 120) or type(exc).__name__,
               f"{type(exc).__name__}: {first_line(text)}",
               "check it, and that RabbitMQ is up and reachable")
