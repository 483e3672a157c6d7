"""The node link tests' ``world``: a real hive with a user, an organization and a swarm project
(see ``tests/support/node_link.py``)."""

from __future__ import annotations

from support.hive_db import hive_dsn, hive_template
from support.node_link import node_link_world

__all__ = ["hive_dsn", "hive_template", "node_link_world"]
