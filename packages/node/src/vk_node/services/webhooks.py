"""Webhook rules: what a saved webhook must satisfy (URL, headers, template, scope) and the
write-only secret.

``override_global`` means something only on a project webhook (it silences the global ones for
that project's events), so a global webhook may not set it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID, uuid4

import msgspec

from vk_node.errors import NotFound, Unprocessable
from vk_node.store import Store
from vk_node.store.models import Webhook
from vk_node.store.repositories import projects as projects_repo
from vk_node.store.repositories import webhooks as webhooks_repo
from vk_node.webhooks import rules, template
from vk_node.webhooks.payload import PLACEHOLDERS

__all__ = ["WebhookView", "create", "get", "update", "view"]


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook as the API shows it: the secret and header values are write-only."""

    id: UUID
    project_id: UUID | None
    """``null``: a global webhook (every project's events)."""
    name: str
    url: str
    events: list[str]
    header_names: list[str]
    """The names of the custom headers (their values are never shown: they often carry
    tokens)."""
    has_secret: bool
    """Deliveries carry ``X-VK-Signature`` (the secret itself is never shown)."""
    payload_template: str | None
    override_global: bool
    active: bool
    created_at: datetime
    updated_at: datetime


def view(hook: Webhook) -> WebhookView:
    return WebhookView(
        id=hook.id,
        project_id=hook.project_id,
        name=hook.name,
        url=hook.url,
        events=hook.events,
        header_names=sorted(hook.headers),
        has_secret=bool(hook.secret),
        payload_template=hook.payload_template,
        override_global=hook.override_global,
        active=hook.active,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _unique(events: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(events))


def _check(
    *,
    url: str,
    headers: Mapping[str, str],
    payload_template: str | None,
    project_id: UUID | None,
    override_global: bool,
) -> None:
    rules.check_url(url)
    rules.check_headers(headers)
    if payload_template is not None:
        template.check(payload_template, PLACEHOLDERS)
    if override_global and project_id is None:
        raise Unprocessable("override_global applies to project webhooks only")


async def get(store: Store, webhook_id: UUID) -> Webhook:
    async with store.read() as conn:
        found = await webhooks_repo.find_by_id(conn, webhook_id)
    if found is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return found


async def create(
    store: Store,
    *,
    name: str,
    url: str,
    project_id: UUID | None,
    events: Sequence[str],
    headers: Mapping[str, str],
    secret: str | None,
    payload_template: str | None,
    override_global: bool,
    active: bool,
) -> Webhook:
    _check(
        url=url,
        headers=headers,
        payload_template=payload_template,
        project_id=project_id,
        override_global=override_global,
    )
    async with store.transaction() as conn:
        if project_id is not None:
            await projects_repo.get(conn, project_id)
        return await webhooks_repo.create(
            conn,
            uuid4(),
            name=name,
            url=url,
            project_id=project_id,
            events=_unique(events),
            headers=dict(headers),
            secret=secret,
            payload_template=payload_template,
            override_global=override_global,
            active=active,
        )


async def update(store: Store, webhook_id: UUID, changes: Mapping[str, object]) -> Webhook:
    """Apply the given fields (absent ones keep their value; ``secret: null`` removes the
    secret)."""
    async with store.transaction() as conn:
        current = await webhooks_repo.find_by_id(conn, webhook_id)
        if current is None:
            raise NotFound(f"webhook {webhook_id} not found")
        merged = msgspec.structs.replace(current, **changes)
        _check(
            url=merged.url,
            headers=merged.headers,
            payload_template=merged.payload_template,
            project_id=merged.project_id,
            override_global=merged.override_global,
        )
        return await webhooks_repo.update(
            conn,
            webhook_id,
            name=merged.name,
            url=merged.url,
            events=_unique(merged.events),
            headers=merged.headers,
            secret=merged.secret,
            payload_template=merged.payload_template,
            override_global=merged.override_global,
            active=merged.active,
        )
