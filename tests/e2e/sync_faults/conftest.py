"""Fixtures of the sync fault tests: a real hive (in-process uvicorn on a fresh PostgreSQL
database) and in-process nodes whose control channel can go through a :class:`TcpProxy`."""

from __future__ import annotations

from support.hive_db import hive_dsn, hive_template

__all__ = ["hive_dsn", "hive_template"]
