"""The node's OpenAPI document, exact: what :mod:`vk_shared.openapi` writes into the generated one.

Every ``/api`` operation can answer (besides the statuses its handler declares with
``opt=answers(...)``):

- 400 — a NUL byte in the URL, a body that is not JSON or nests too deeply, a parameter or body
  that fails validation; 413 — a body over ``VK_NODE_MAX_BODY_BYTES`` (the body guard reads the
  body of every method);
- 421 — a ``Host`` that is not this node (:mod:`vk_node.api.guard`); 403 — a state-changing
  request from a foreign ``Origin``/``Referer``; 415 — a ``POST``/``PUT``/``PATCH`` body that is
  not ``application/json``;
- 401 — no or a wrong ``Authorization: Bearer`` when ``VK_NODE_API_TOKEN`` is set (the ``bearer``
  scheme is therefore optional), except on ``GET /api/health``;
- 404 — a path id that names nothing.

Request bodies and integer parameters are documented as strictly as they are validated.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

from vk_shared.openapi import Operation, Route, exact

__all__ = ["ExactDocument", "operation"]

_SCHEME = "VK_NODE_API_TOKEN (when it is set)"

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_OPEN = ("GET", "/api/health")


def operation(route: Route) -> Operation:
    """The facts of one operation of the node's API."""
    errors = {400, 413, 421, *route.declared}
    errors |= {403} if route.method in _STATE_CHANGING else set()
    errors |= {415} if route.method in _WITH_BODY else set()
    errors |= {404} if route.path_params else set()
    secured = (route.method, route.path) != _OPEN
    errors |= {401} if secured else set()
    return route.documented(errors, "optional" if secured else "none")


class ExactDocument(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` with the node's facts written in."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        document = exact(request.app, openapi_schema, operation, scheme_description=_SCHEME)
        return self.render_json(request, document)
