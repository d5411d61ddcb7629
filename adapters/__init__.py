"""Implementations of the application's ports: PostgreSQL, RabbitMQ, in-memory, emulation."""
