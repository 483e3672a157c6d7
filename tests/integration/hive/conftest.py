"""Hive database fixtures shared by every hive integration test (defined in
``tests/support/hive_db.py`` so the node link's tests can run a real hive too).

- ``hive_template`` (session): one database migrated once, used as a TEMPLATE; its name.
- ``hive_dsn`` (per test): a fresh copy of the template (``CREATE DATABASE … TEMPLATE``), dropped
  after the test; its URL.
- ``hive_db`` (per test): a connected ``vk_hive.store.Database`` on ``hive_dsn``, closed after.

Copying the template takes a few hundred milliseconds (migrating from scratch takes longer and
runs the whole DDL), and the copies are made ahead in a thread while the tests run, so every test
that asks for ``hive_dsn``/``hive_db`` gets its own fully migrated database instead of sharing one
and cleaning up.
"""

from __future__ import annotations

from support.hive_db import hive_db, hive_dsn, hive_template

__all__ = ["hive_db", "hive_dsn", "hive_template"]
