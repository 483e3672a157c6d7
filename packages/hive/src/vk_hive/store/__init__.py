"""The hive's PostgreSQL store: connection pool, migrations and one repository per model.

Repository functions live in ``vk_hive.store.repositories.<model>``; each takes an asyncpg
connection first so callers compose several of them in one transaction, and returns msgspec
Structs from ``vk_hive.store.models``. Domain errors come from ``vk_hive.errors``.
"""

from vk_hive.store.db import Database
from vk_hive.store.migrate import migrate

__all__ = ["Database", "migrate"]
