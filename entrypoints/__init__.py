"""Thin entry points: HTTP app, AMQP intake, worker, CLI and the DI container that wires them."""
