"""Every deadline on the connections to PostgreSQL and RabbitMQ, in one place (README: Timeouts).

A silent peer (packets dropped, or a server that stops answering on an open connection) is
caught by these, not by the operating system, whose own TCP timeouts run to many minutes.
"""

from __future__ import annotations

# -- PostgreSQL --------------------------------------------------------------------------------
#: libpq's connect_timeout: one attempt to connect, log in included (whole seconds, at least 2)
PG_CONNECT_SECONDS = 5
#: the client's own deadline on every round trip (a statement, a fetch, a commit): past it the
#: connection is closed and the caller gets "database unavailable". A request may wait for one
#: round trip of another (creates share transactions) and then for a connection: the two
#: together stay under the 10 s in which a request must have its answer
PG_ROUND_TRIP_SECONDS = 4.0
#: how long a unit of work waits for a pooled connection before answering "unavailable"
PG_POOL_WAIT_SECONDS = 4.0
#: server side: a statement running longer is cancelled by PostgreSQL itself (before the
#: client's deadline, so that a slow server costs an error, not the connection)
PG_STATEMENT_TIMEOUT_MS = 3_000
#: server side: a session left idle inside a transaction (its client gone silent) is ended, so
#: that the rows it locked are free again
PG_IDLE_IN_TRANSACTION_MS = 15_000
#: TCP keepalives and the TCP user timeout on every connection (what the OS can still catch)
PG_KEEPALIVES_IDLE_SECONDS = 10
PG_KEEPALIVES_INTERVAL_SECONDS = 5
PG_KEEPALIVES_COUNT = 3
PG_TCP_USER_TIMEOUT_MS = 15_000
#: the readiness probe: waiting for a connection, then its round trips (within the 2 s the
#: readiness check gives each probe)
PG_PROBE_WAIT_SECONDS = 0.8
PG_PROBE_ROUND_TRIP_SECONDS = 1.0
#: the LISTEN connection asks `SELECT 1` after this many quiet seconds
PG_LISTENER_CHECK_SECONDS = 10.0

# -- RabbitMQ ----------------------------------------------------------------------------------
#: AMQP heartbeat: the client declares the connection dead after (heartbeat + 1) x 3 seconds
#: without a frame, RabbitMQ after two missed heartbeats
AMQP_HEARTBEAT_SECONDS = 5
#: one attempt to connect (TCP, AMQP handshake, login)
AMQP_CONNECT_SECONDS = 5.0
#: waiting for RabbitMQ to confirm one publish
AMQP_CONFIRM_SECONDS = 10.0
#: how long the outbox relay holds the entries it is publishing: longer than a confirm may take,
#: so that no other relay sends them meanwhile; entries of a relay that died wait this long
OUTBOX_HOLD_SECONDS = AMQP_CONFIRM_SECONDS + 2.0
#: opening a channel or declaring a queue outside the hot paths (dead-letter tools, gauges)
AMQP_RPC_SECONDS = 5.0
#: pause between two attempts of the robust connection to reconnect
AMQP_RECONNECT_SECONDS = 1.0
