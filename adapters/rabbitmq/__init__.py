"""RabbitMQ adapters (FastStream): topology, connection, dispatch publisher, probe."""
