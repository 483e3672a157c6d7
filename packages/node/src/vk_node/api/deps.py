"""Dependencies and request guards shared by every controller."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from vk_node.context import NodeContext
from vk_node.errors import InvalidInput
from vk_node.store import Store
from vk_shared.jsoncheck import request_problem

__all__ = ["Ctx", "Db", "provide_ctx", "provide_store", "reject_nul_bytes"]

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


async def reject_nul_bytes(request: Request[Any, Any, Any]) -> None:
    """``before_request`` guard of every route: no NUL byte in the URL; the body (of any method),
    before anything decodes it, is JSON nested at most ``MAX_DEPTH`` levels deep, without lone
    surrogate escapes or NUL characters in its strings (``vk_shared.jsoncheck.request_problem``)."""
    problem = request_problem(
        request.scope.get("path", ""), request.scope.get("query_string", b""), await request.body()
    )
    if problem is not None:
        code, detail = problem
        raise InvalidInput(detail, code=code)
