"""Dependencies and request guards shared by every controller."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency

from vk_node.context import NodeContext
from vk_node.store import Store

__all__ = ["Ctx", "Db", "provide_ctx", "provide_store"]

Ctx = NamedDependency[NodeContext]
"""The node's shared context (settings, store), injected as ``ctx``."""
Db = NamedDependency[Store]
"""The node's open store, injected as ``store``."""


def provide_ctx(state: State) -> NodeContext:
    ctx: NodeContext = state.node
    return ctx


def provide_store(state: State) -> Store:
    ctx: NodeContext = state.node
    return ctx.store
