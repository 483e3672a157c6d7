"""The node's SQLite store: schema migrations, connection layer, repositories and the outbox."""

from vk_node.errors import Conflict, DomainError, InvalidTransition, NotFound
from vk_node.store.db import Store
from vk_node.store.migrate import migrate

__all__ = ["Conflict", "DomainError", "InvalidTransition", "NotFound", "Store", "migrate"]
