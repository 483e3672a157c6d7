"""The node link tests' ``world``: a real hive with a user, an organization and a swarm project
(see ``tests/support/node_link.py``)."""

from __future__ import annotations

from ..link.conftest import hive_dsn, hive_template, world

__all__ = ["hive_dsn", "hive_template", "world"]
