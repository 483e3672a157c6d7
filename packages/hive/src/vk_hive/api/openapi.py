"""The hive's OpenAPI document, exact: what :mod:`vk_shared.openapi` writes into the generated one.

Every operation can answer (besides the statuses its handler declares with ``opt=answers(...)``):

- 400 — a NUL byte in the URL, a body that is not JSON or nests too deeply, a parameter or body
  that fails validation; 413 — a body over ``VK_HIVE_MAX_BODY_BYTES`` (the body guard reads the
  body of every method);
- 401 — a route that needs a token (its handler takes ``principal``, or a node's API key:
  ``NODE_KEY_AUTH``; the ``bearer`` scheme is required) called without a valid one;
- 403 — such a route that names something of an organization (an id of an organization,
  project, task, node, label, template, key or member) called by someone who may not touch it;
- 404 — a path id, or an organization-scoped id of an authenticated route, that names nothing
  (or nothing the caller may see);
- 429 — the auth endpoints beyond their rate limit (:mod:`vk_hive.api.ratelimit`).

Request bodies and integer parameters are documented as strictly as they are validated.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

from vk_hive.api.ratelimit import is_rate_limited
from vk_shared.openapi import Operation, Route, exact

__all__ = ["NODE_KEY_AUTH", "ExactDocument", "operation"]

_SCHEME = "a personal access token or session; a node API key on /v1/sync"

NODE_KEY_AUTH: dict[str, Any] = {"vk_node_key_auth": True}
"""``opt`` of the routes a node calls with its API key as the bearer token (``/v1/sync``)."""

_SCOPED = frozenset(
    {
        "org_id",
        "organization_id",
        "project_id",
        "task_id",
        "node_id",
        "source_id",
        "target_id",
        "label_id",
        "template_id",
        "key_id",
        "user_id",
    }
)
"""Parameters naming something that belongs to an organization."""


def operation(route: Route) -> Operation:
    """The facts of one operation of the hive's API."""
    secured = "principal" in route.params or bool(route.opt.get("vk_node_key_auth"))
    errors = {400, 413, *route.declared}
    errors |= {401} if secured else set()
    errors |= {403} if secured and route.params & _SCOPED else set()
    errors |= {404} if route.path_params or (secured and route.params & _SCOPED) else set()
    errors |= {429} if is_rate_limited(route.opt) else set()
    return route.documented(errors, "required" if secured else "none")


class ExactDocument(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` with the hive's facts written in."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        document = exact(request.app, openapi_schema, operation, scheme_description=_SCHEME)
        return self.render_json(request, document)
