"""In-memory adapters: the fakes of the unit tests and the storage of `tasks dev`."""

from adapters.memory.broker import InMemoryBroker, InMemoryDelivery
from adapters.memory.store import InMemoryStore, InMemoryUnitOfWork

__all__ = ["InMemoryBroker", "InMemoryDelivery", "InMemoryStore", "InMemoryUnitOfWork"]
