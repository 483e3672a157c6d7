"""Dependencies and request guards shared by every controller."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from vk_node.errors import BadRequest
from vk_node.lifespan import NodeContext
from vk_node.store import Store

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


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def reject_nul_bytes(request: Request[Any, Any, Any]) -> None:
    """``before_request`` guard: no NUL byte in the path, the query or any JSON string."""
    if "\x00" in request.scope.get("path", "") or b"%00" in request.scope.get("query_string", b""):
        raise BadRequest("NUL bytes are not allowed in the URL")
    if request.method in ("POST", "PUT", "PATCH"):
        body = await request.body()
        if b"\\u0000" in body or b"\x00" in body:
            try:
                decoded = msgspec.json.decode(body)
            except msgspec.DecodeError:
                raise BadRequest("the request body is not valid JSON") from None
            if _has_nul(decoded):
                raise BadRequest("NUL bytes are not allowed in strings")
