"""Fixtures of the chaos smoke test: the migrated hive template database."""

from __future__ import annotations

from support.hive_db import hive_template

__all__ = ["hive_template"]
