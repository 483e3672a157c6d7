"""The node's SQLite store: schema migrations, connection layer, repositories and the outbox."""

from vk_node.store.db import Store
from vk_node.store.errors import Conflict, InvalidTransition, NotFound, StoreError
from vk_node.store.migrate import migrate

__all__ = ["Conflict", "InvalidTransition", "NotFound", "Store", "StoreError", "migrate"]
