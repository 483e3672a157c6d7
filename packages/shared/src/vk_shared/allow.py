"""``Allow`` of an ``OPTIONS`` answer: the methods of the route, all of them.

Litestar answers ``OPTIONS`` with the methods its route had when the route's first handler was
registered, so a path whose ``GET`` and ``POST`` come from one controller may advertise only
``POST``. :class:`OptionsAllow` is an ASGI wrapper (no web framework needed) that rewrites the
``Allow`` header of every ``OPTIONS`` answer from a table of the application's routes, keyed by
the route template the framework leaves in ``scope["path_template"]``; ``405`` answers already
name every method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["OptionsAllow"]

App = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI application (typed loosely: each framework spells scope and messages its own way)."""


class OptionsAllow:
    def __init__(self, app: App, allow: Mapping[str, str]) -> None:
        self.app = app
        self.allow = {template: value.encode("latin-1") for template, value in allow.items()}

    @classmethod
    def for_routes(cls, app: App, routes: Iterable[Any]) -> OptionsAllow:
        """Wrap ``app`` with the methods of its HTTP ``routes`` (Litestar's ``app.routes``)."""
        allow = {
            route.path_format: ", ".join(sorted(route.methods))
            for route in routes
            if getattr(route, "route_handlers", None)
        }
        return cls(app, allow)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return

        async def send_allow(message: MutableMapping[str, Any]) -> None:
            value = self.allow.get(str(scope.get("path_template")))
            if message["type"] == "http.response.start" and value is not None:
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
                message["headers"] = [*headers, (b"allow", value)]
            await send(message)

        await self.app(scope, receive, send_allow)
