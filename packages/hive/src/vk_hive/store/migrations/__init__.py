"""Ordered SQL migrations: ``NNNN_name.sql``, applied by ``vk_hive.store.migrate``."""
