"""RabbitMQ: the one adapter (broker.py), its topology and its deliveries."""
