"""Organization resolution and role checks for every domain endpoint (hive-store.md §6).

A missing entity is 404; an entity of an organization the caller is not a member of is 403;
admin-only actions by a plain member are 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from vk_hive.auth.principal import Principal
from vk_hive.errors import Forbidden, NotFound
from vk_hive.tenancy import repository as tenancy_repo

__all__ = ["Membership", "member_of_entity", "member_of_org"]

OrgLookup = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[uuid.UUID | None]]


class Membership:
    """The caller's role in one organization."""

    def __init__(self, org_id: uuid.UUID, role: str) -> None:
        self.org_id = org_id
        self.role = role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("admin role required")


async def member_of_org(
    conn: asyncpg.Connection, org_id: uuid.UUID, principal: Principal
) -> Membership:
    role = await tenancy_repo.get_role(conn, org_id, principal.user_id)
    if role is None:
        if await tenancy_repo.get_organization(conn, org_id) is None:
            raise NotFound("organization not found")
        raise Forbidden("not a member of this organization")
    return Membership(org_id, role)


async def member_of_entity(
    conn: asyncpg.Connection,
    lookup: OrgLookup,
    entity_id: uuid.UUID,
    principal: Principal,
    what: str,
) -> Membership:
    """Resolve the entity's organization with ``lookup`` and require membership in it."""
    org_id = await lookup(conn, entity_id)
    if org_id is None:
        raise NotFound(f"{what} not found")
    role = await tenancy_repo.get_role(conn, org_id, principal.user_id)
    if role is None:
        raise Forbidden("not a member of this organization")
    return Membership(org_id, role)
