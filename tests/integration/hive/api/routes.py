"""Every REST route of the hive with a valid request and who may call it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from vk_hive.web import static_digest

Role = Literal["public", "self", "member", "admin"]
_PARAM = re.compile(r"\{[^}]+\}")


def normalise(path: str) -> str:
    """Replace every ``{param}`` / ``{param:type}`` with ``{}``."""
    return _PARAM.sub("{}", path)


@dataclass(frozen=True)
class Ep:
    method: str
    path: str  # with {placeholders} filled from World.ids
    role: Role
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)

    def url(self, ids: dict[str, str]) -> str:
        return self.path.format(**ids)

    def params(self, ids: dict[str, str]) -> dict[str, str]:
        return {k: v.format(**ids) for k, v in self.query.items()}

    def json(self, ids: dict[str, str]) -> Any:
        def fill(v: Any) -> Any:
            if isinstance(v, str):
                return v.format(**ids)
            if isinstance(v, dict):
                return {k: fill(x) for k, x in v.items()}
            return v

        return None if self.body is None else fill(self.body)

    @property
    def key(self) -> str:
        """``METHOD /v1/path/{}`` with placeholders normalised, to compare with the app."""
        return f"{self.method} {normalise(self.path)}"


ORG = "{org_id}"
ROUTES: list[Ep] = [
    Ep("GET", "/v1/health", "public"),
    Ep("GET", "/metrics", "public"),  # Prometheus text, not JSON
    # Browser pages (HTML; a session cookie, not a Bearer token: test_browser_login.py and
    # test_board_pages.py) and the board's static files.
    Ep("GET", "/", "public"),
    Ep("GET", "/login", "public"),
    Ep("GET", "/login/{token}", "public"),
    Ep("POST", "/logout", "public"),
    Ep("GET", "/projects/{project_id}", "public"),
    Ep("GET", "/tasks/{task_id}", "public"),
    Ep("GET", "/nodes", "public"),
    Ep("GET", f"/static/{static_digest()}/{{file_path}}", "public"),
    # Node snapshots: Bearer = the node's API key, so every user token is refused (401).
    Ep("GET", "/v1/sync/projects/{project_id}/snapshot", "self"),
    Ep("GET", "/v1/sync/tasks", "self", query={"ids": "{task_id}"}),
    Ep("GET", "/v1/me", "self"),
    Ep("GET", "/v1/identity", "self"),
    Ep("GET", "/v1/profile", "self"),
    Ep("POST", "/v1/tokens/refresh", "public", {"refresh_token": "garbage"}),
    Ep("POST", "/v1/oauth/logout", "self"),
    Ep("POST", "/v1/tokens/personal", "self", {"name": "x"}),
    Ep("GET", "/v1/tokens/personal", "self"),
    Ep("DELETE", "/v1/tokens/personal/{task_id}", "self"),
    Ep(
        "POST",
        "/v1/oauth/web/init",
        "public",
        {"provider": "github", "return_to": "http://localhost/x", "app_challenge": "a" * 64},
    ),
    Ep("GET", "/v1/oauth/github/start", "public", query={"handoff_id": "{task_id}"}),
    Ep("GET", "/v1/oauth/github/callback", "public", query={"state": "s", "code": "c"}),
    Ep(
        "POST",
        "/v1/oauth/web/redeem",
        "public",
        {"handoff_id": "{task_id}", "app_code": "x", "app_verifier": "y"},
    ),
    Ep("GET", "/v1/invitations/{invitation_token}", "public"),
    Ep("POST", "/v1/invitations/{invitation_token}/accept", "self"),
    Ep("GET", "/v1/organizations", "self"),
    Ep("POST", "/v1/organizations", "self", {"name": "new org"}),
    Ep("GET", "/v1/organizations/{org_id}", "member"),
    Ep("PATCH", "/v1/organizations/{org_id}", "admin", {"name": "renamed"}),
    Ep("DELETE", "/v1/organizations/{org_id}", "admin"),
    Ep("GET", "/v1/organizations/{org_id}/members", "member"),
    Ep("PATCH", "/v1/organizations/{org_id}/members/{member_id}/role", "admin", {"role": "admin"}),
    Ep("DELETE", "/v1/organizations/{org_id}/members/{member_id}", "admin"),
    Ep("POST", "/v1/organizations/{org_id}/invitations", "admin", {"email": "y@example.com"}),
    Ep("GET", "/v1/organizations/{org_id}/invitations", "admin"),
    Ep(
        "POST",
        "/v1/organizations/{org_id}/invitations/revoke",
        "admin",
        {"invitation_id": "{invitation_id}"},
    ),
    Ep("GET", "/v1/organizations/{org_id}/webhooks", "admin"),
    Ep(
        "POST",
        "/v1/organizations/{org_id}/webhooks",
        "admin",
        {"name": "w2", "url": "https://hooks.example.com/b", "events": ["node_offline"]},
    ),
    Ep("GET", "/v1/organizations/{org_id}/webhooks/{webhook_id}", "admin"),
    Ep("PATCH", "/v1/organizations/{org_id}/webhooks/{webhook_id}", "admin", {"active": True}),
    Ep("DELETE", "/v1/organizations/{org_id}/webhooks/{webhook2_id}", "admin"),
    Ep("POST", "/v1/organizations/{org_id}/webhooks/{webhook_id}/test", "admin"),
    Ep("GET", "/v1/organizations/{org_id}/webhooks/{webhook_id}/deliveries", "admin"),
    Ep("POST", "/v1/swarm/projects", "member", {"organization_id": ORG, "name": "q"}),
    Ep("GET", "/v1/swarm/projects", "member", query={"organization_id": ORG}),
    Ep("GET", "/v1/swarm/projects/{project_id}", "member"),
    Ep("PATCH", "/v1/swarm/projects/{project_id}", "member", {"name": "p-renamed"}),
    Ep("DELETE", "/v1/swarm/projects/{project_id}", "member"),
    Ep(
        "POST",
        "/v1/swarm/projects/{project2_id}/merge",
        "member",
        {"target_id": "{project_id}"},
    ),
    Ep("GET", "/v1/swarm/projects/{project_id}/nodes", "member"),
    Ep("DELETE", "/v1/swarm/projects/{project_id}/nodes/{node_id}", "member"),
    Ep("GET", "/v1/nodes", "member", query={"organization_id": ORG}),
    Ep("GET", "/v1/nodes/{node_id}", "member"),
    Ep("DELETE", "/v1/nodes/{node_id}", "admin"),
    Ep("GET", "/v1/nodes/{node_id}/projects", "member"),
    Ep("GET", "/v1/nodes/{node_id}/projects/linked", "member"),
    Ep("POST", "/v1/nodes/{node2_id}/merge-to/{node_id}", "admin"),
    Ep("POST", "/v1/nodes/api-keys", "member", {"organization_id": ORG, "name": "k2"}),
    Ep("GET", "/v1/nodes/api-keys", "member", query={"organization_id": ORG}),
    Ep("DELETE", "/v1/nodes/api-keys/{key_id}", "member"),
    Ep("POST", "/v1/nodes/api-keys/{key_id}/unblock", "admin"),
    Ep(
        "POST",
        "/v1/tasks",
        "member",
        {"project_id": "{project_id}", "title": "t2", "description": "", "executor": "SCRIPT"},
    ),
    Ep("GET", "/v1/tasks", "member", query={"project_id": "{project_id}"}),
    Ep("GET", "/v1/tasks/{task_id}", "member"),
    Ep("PATCH", "/v1/tasks/{task_id}", "admin", {"title": "t3"}),
    Ep("DELETE", "/v1/tasks/{task_id}", "admin"),
    Ep("POST", "/v1/tasks/{task_id}/archive", "admin", {"archived": True}),
    Ep("POST", "/v1/tasks/{task_id}/assign", "admin", {"node_id": "{node_id}"}),
    Ep("GET", "/v1/tasks/{task_id}/assignments", "member"),
    Ep("GET", "/v1/tasks/{task_id}/logs", "member"),
    Ep("GET", "/v1/tasks/{task_id}/executions", "member"),
    Ep("GET", "/v1/tasks/{task_id}/progress", "member"),
    Ep("GET", "/v1/execution-processes/{process_id}/logs", "member", query={"after_id": "0"}),
    Ep("GET", "/v1/tasks/{task_id}/labels", "member"),
    Ep("POST", "/v1/tasks/{task_id}/labels/{label_id}", "member"),
    Ep("DELETE", "/v1/tasks/{task_id}/labels/{label_id}", "member"),
    Ep("GET", "/v1/swarm/labels", "member", query={"organization_id": ORG}),
    Ep("POST", "/v1/swarm/labels", "member", {"organization_id": ORG, "name": "l3"}),
    Ep("GET", "/v1/swarm/labels/{label_id}", "member"),
    Ep("PATCH", "/v1/swarm/labels/{label_id}", "member", {"name": "l4"}),
    Ep("DELETE", "/v1/swarm/labels/{label_id}", "member"),
    Ep("POST", "/v1/swarm/labels/{label2_id}/merge", "member", {"target_id": "{label_id}"}),
    Ep("POST", "/v1/swarm/labels/promote", "member", {"label_id": "{label_id}"}),
    Ep("GET", "/v1/swarm/templates", "member", query={"organization_id": ORG}),
    Ep("POST", "/v1/swarm/templates", "member", {"organization_id": ORG, "name": "t5"}),
    Ep("GET", "/v1/swarm/templates/{template_id}", "member"),
    Ep("PATCH", "/v1/swarm/templates/{template_id}", "member", {"content": "c"}),
    Ep("DELETE", "/v1/swarm/templates/{template_id}", "member"),
    Ep(
        "POST",
        "/v1/swarm/templates/{template2_id}/merge",
        "member",
        {"target_id": "{template_id}"},
    ),
    Ep("GET", "/v1/activity", "member", query={"project_id": "{project_id}"}),
]
