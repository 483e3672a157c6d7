"""Organization, member and invitation rules (hive-store.md §6, security.md §2)."""

from __future__ import annotations

import re
import secrets
import uuid

import msgspec

from vk_hive.auth import repository as auth_repo
from vk_hive.auth.crypto import sha256_hex
from vk_hive.auth.principal import Principal
from vk_hive.errors import Conflict, Forbidden, NotFound
from vk_hive.store.db import Database
from vk_hive.tenancy import repository as repo

__all__ = [
    "CreatedInvitation",
    "accept_invitation",
    "change_role",
    "create_invitation",
    "create_organization",
    "delete_organization",
    "find_invitation",
    "remove_member",
]

_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


async def _member_role(conn: repo.Conn, org_id: uuid.UUID, principal: Principal) -> str:
    if await repo.get_organization(conn, org_id) is None:
        raise NotFound("organization not found")
    role = await repo.get_role(conn, org_id, principal.user_id)
    if role is None:
        raise Forbidden("not a member of this organization")
    return role


async def _admin_org(conn: repo.Conn, org_id: uuid.UUID, principal: Principal) -> repo.Organization:
    if await _member_role(conn, org_id, principal) != "admin":
        raise Forbidden("admin role required")
    org = await repo.get_organization(conn, org_id)
    assert org is not None
    return org


def slugify(name: str) -> str:
    base = _SLUG_CHARS.sub("-", name.lower()).strip("-")[:40] or "org"
    return f"{base}-{secrets.token_hex(3)}"


async def create_organization(
    db: Database, principal: Principal, name: str, slug: str | None
) -> repo.OrganizationWithRole:
    async with db.transaction() as conn:
        org = await repo.create_organization(conn, name=name, slug=slug or slugify(name))
        if org is None:
            raise Conflict("an organization with this slug already exists")
        await repo.add_member(conn, org.id, principal.user_id, "admin")
    return with_role(org, "admin")


def with_role(org: repo.Organization, role: str) -> repo.OrganizationWithRole:
    return repo.OrganizationWithRole(
        id=org.id,
        name=org.name,
        slug=org.slug,
        is_personal=org.is_personal,
        created_at=org.created_at,
        updated_at=org.updated_at,
        user_role=role,
    )


async def get_organization(
    db: Database, principal: Principal, org_id: uuid.UUID
) -> repo.OrganizationWithRole:
    async with db.acquire() as conn:
        role = await _member_role(conn, org_id, principal)
        org = await repo.get_organization(conn, org_id)
    assert org is not None
    return with_role(org, role)


async def rename_organization(
    db: Database, principal: Principal, org_id: uuid.UUID, name: str
) -> repo.OrganizationWithRole:
    async with db.transaction() as conn:
        await _admin_org(conn, org_id, principal)
        org = await repo.rename_organization(conn, org_id, name)
    assert org is not None
    return with_role(org, "admin")


async def delete_organization(db: Database, principal: Principal, org_id: uuid.UUID) -> None:
    async with db.transaction() as conn:
        org = await _admin_org(conn, org_id, principal)
        if org.is_personal:
            raise Conflict("a personal organization cannot be deleted")
        await repo.delete_organization(conn, org_id)


async def list_members(db: Database, principal: Principal, org_id: uuid.UUID) -> list[repo.Member]:
    async with db.acquire() as conn:
        await _member_role(conn, org_id, principal)
        return await repo.list_members(conn, org_id)


async def change_role(
    db: Database, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID, role: repo.Role
) -> None:
    async with db.transaction() as conn:
        org = await _admin_org(conn, org_id, principal)
        if org.is_personal:
            raise Conflict("members of a personal organization cannot be changed")
        admins = await repo.lock_admins(conn, org_id)
        current = await repo.get_role(conn, org_id, user_id)
        if current is None:
            raise NotFound("member not found")
        if role == current:
            return
        if user_id == principal.user_id:
            raise Conflict("you cannot change your own role")
        if current == "admin" and admins == [user_id]:
            raise Conflict("the last admin cannot be demoted")
        await repo.set_member_role(conn, org_id, user_id, role)


async def remove_member(
    db: Database, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    async with db.transaction() as conn:
        org = await _admin_org(conn, org_id, principal)
        if org.is_personal:
            raise Conflict("members of a personal organization cannot be changed")
        admins = await repo.lock_admins(conn, org_id)
        current = await repo.get_role(conn, org_id, user_id)
        if current is None:
            raise NotFound("member not found")
        if user_id == principal.user_id:
            raise Conflict("you cannot remove yourself")
        if current == "admin" and admins == [user_id]:
            raise Conflict("the last admin cannot be removed")
        await repo.remove_member(conn, org_id, user_id)


class CreatedInvitation(repo.Invitation, frozen=True):
    """A new invitation with its token: the only time the token is shown (the hive keeps its
    SHA-256 only)."""

    token: str


async def create_invitation(
    db: Database,
    principal: Principal,
    org_id: uuid.UUID,
    email: str,
    role: repo.Role,
    ttl_s: float,
) -> CreatedInvitation:
    """A pending invitation whose token is a random UUID; only its hash is stored."""
    token = str(uuid.uuid4())
    async with db.transaction() as conn:
        org = await _admin_org(conn, org_id, principal)
        if org.is_personal:
            raise Conflict("a personal organization cannot invite members")
        invited = await auth_repo.find_user_by_email(conn, email)
        if invited is not None and await repo.get_role(conn, org_id, invited.id) is not None:
            raise Conflict("this user is already a member")
        invitation = await repo.create_invitation(
            conn,
            org_id=org_id,
            invited_by=principal.user_id,
            email=email,
            role=role,
            token_hash=sha256_hex(token),
            ttl_s=ttl_s,
        )
        if invitation is None:
            raise Conflict("an invitation for this email is already pending")
    return CreatedInvitation(**msgspec.structs.asdict(invitation), token=token)


async def find_invitation(
    db: Database, token: str
) -> tuple[repo.Invitation, repo.Organization, bool]:
    """The invitation of ``token``, its organization and whether it has expired; 404 when the
    token is unknown."""
    async with db.acquire() as conn:
        found = await repo.get_invitation_by_token_hash(conn, sha256_hex(token))
        org = None if found is None else await repo.get_organization(conn, found[0].organization_id)
    if found is None or org is None:
        raise NotFound("invitation not found")
    invitation, expired = found
    return invitation, org, expired


async def list_invitations(
    db: Database, principal: Principal, org_id: uuid.UUID
) -> list[repo.Invitation]:
    async with db.acquire() as conn:
        await _admin_org(conn, org_id, principal)
        return await repo.list_invitations(conn, org_id)


async def revoke_invitation(
    db: Database, principal: Principal, org_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    async with db.transaction() as conn:
        await _admin_org(conn, org_id, principal)
        if not await repo.revoke_invitation(conn, org_id, invitation_id):
            raise NotFound("invitation not found")


async def accept_invitation(
    db: Database, principal: Principal, token: str
) -> repo.OrganizationWithRole:
    problem: Exception | None = None
    async with db.transaction() as conn:
        found = await repo.get_invitation_by_token_hash(conn, sha256_hex(token), for_update=True)
        if found is None:
            raise NotFound("invitation not found")
        invitation, expired = found
        if invitation.status != "pending":
            raise Conflict(f"invitation is {invitation.status}")
        if expired:
            await repo.set_invitation_status(conn, invitation.id, "expired")
            problem = Conflict("invitation expired")
        elif invitation.email.lower() != principal.user.email.lower():
            raise Forbidden("this invitation is for another email address")
        elif await repo.get_role(conn, invitation.organization_id, principal.user_id) is not None:
            raise Conflict("already a member of this organization")
        else:
            role: repo.Role = "admin" if invitation.role == "admin" else "member"
            await repo.add_member(conn, invitation.organization_id, principal.user_id, role)
            await repo.set_invitation_status(conn, invitation.id, "accepted")
            org = await repo.get_organization(conn, invitation.organization_id)
    if problem is not None:
        raise problem
    assert org is not None
    return with_role(org, role)
