"""Fixtures of the user stream tests with real nodes: a real hive and in-process nodes (SQLite,
git, the executor, the hive link; ``tests/support/node_link.py``), as the fixture ``world``."""

from __future__ import annotations

from support.node_link import node_link_world

__all__ = ["node_link_world"]
