"""Benchmarks that run real `tasks` processes against the local PostgreSQL and RabbitMQ.

`python -m bench` measures performance; `python -m bench.chaos` measures what survives
SIGKILLed workers and a broker restart. Both print figures and never assert them.
"""
