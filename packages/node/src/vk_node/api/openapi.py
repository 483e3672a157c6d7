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

from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin

from vk_shared.openapi import PARAMETERS, Operation, Route, finish, routes_of

__all__ = ["API_DESCRIPTION", "ExactDocument", "operation"]

API_DESCRIPTION = (
    "Every error is RFC 9457 problem details (application/problem+json) with a stable "
    "machine-readable `code`. A string holding a NUL character is refused (400 invalid_input), "
    "whatever the field."
)

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
    return Operation(
        frozenset(errors),
        "optional" if secured else "none",
        body=route.body,
        constraints=route.constraints,
        parameters=route.opt.get(PARAMETERS, {}),
    )


class ExactDocument(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` with the node's facts written in (built once)."""

    _exact: dict[str, Any] | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._exact is None:
            app: Litestar = request.app
            facts = {(r.method.lower(), r.path): operation(r) for r in routes_of(app.routes)}
            self._exact = finish(
                openapi_schema, facts, scheme_description="VK_NODE_API_TOKEN (when it is set)"
            )
        return self.render_json(request, self._exact)
