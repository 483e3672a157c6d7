"""The domain controllers built on the store's repositories (projects, nodes, tasks, ...)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

__all__ = ["domain_handlers"]


def domain_handlers() -> list[ControllerRouterHandler]:
    return []
