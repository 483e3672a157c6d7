"""SQL for organizations, members and invitations. Connection-first; msgspec Structs out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, TypeAlias

import asyncpg
import msgspec

__all__ = ["Invitation", "Member", "Organization", "OrganizationWithRole"]

Conn: TypeAlias = asyncpg.Connection
Role = Literal["admin", "member"]


class Organization(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    slug: str
    is_personal: bool
    created_at: datetime
    updated_at: datetime


class OrganizationWithRole(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    slug: str
    is_personal: bool
    created_at: datetime
    updated_at: datetime
    user_role: str


class Member(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    email: str
    username: str | None
    first_name: str | None
    last_name: str | None
    role: str
    joined_at: datetime


class Invitation(msgspec.Struct, frozen=True):
    """An invitation as stored: its token is not (only its hash, which is never read back)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    invited_by_user_id: uuid.UUID | None
    email: str
    role: str
    status: str
    expires_at: datetime
    created_at: datetime


_ORG_COLS = "o.id, o.name, o.slug, o.is_personal, o.created_at, o.updated_at"


def personal_slug(user_id: uuid.UUID) -> str:
    return f"personal-{user_id}"


async def create_organization(
    conn: Conn, *, name: str, slug: str, is_personal: bool = False
) -> Organization | None:
    """Insert an organization; ``None`` when the slug is taken."""
    row = await conn.fetchrow(
        """INSERT INTO organizations AS o (name, slug, is_personal) VALUES ($1, $2, $3)
           ON CONFLICT (slug) DO NOTHING
           RETURNING o.id, o.name, o.slug, o.is_personal, o.created_at, o.updated_at""",
        name,
        slug,
        is_personal,
    )
    return None if row is None else Organization(**dict(row))


async def get_organization(conn: Conn, org_id: uuid.UUID) -> Organization | None:
    row = await conn.fetchrow(
        f"SELECT {_ORG_COLS} FROM organizations o WHERE o.id = $1",  # noqa: S608
        org_id,
    )
    return None if row is None else Organization(**dict(row))


async def find_organization_by_slug(conn: Conn, slug: str) -> Organization | None:
    row = await conn.fetchrow(
        f"SELECT {_ORG_COLS} FROM organizations o WHERE o.slug = $1",  # noqa: S608
        slug,
    )
    return None if row is None else Organization(**dict(row))


async def rename_organization(conn: Conn, org_id: uuid.UUID, name: str) -> Organization | None:
    row = await conn.fetchrow(
        """UPDATE organizations AS o SET name = $2 WHERE o.id = $1
           RETURNING o.id, o.name, o.slug, o.is_personal, o.created_at, o.updated_at""",
        org_id,
        name,
    )
    return None if row is None else Organization(**dict(row))


async def delete_organization(conn: Conn, org_id: uuid.UUID) -> bool:
    status = await conn.execute("DELETE FROM organizations WHERE id = $1", org_id)
    return bool(status == "DELETE 1")


async def list_user_organizations(conn: Conn, user_id: uuid.UUID) -> list[OrganizationWithRole]:
    rows = await conn.fetch(
        f"""SELECT {_ORG_COLS}, m.role::text AS user_role
            FROM organizations o
            JOIN organization_member_metadata m ON m.organization_id = o.id
            WHERE m.user_id = $1
            ORDER BY o.is_personal DESC, o.name, o.id""",  # noqa: S608
        user_id,
    )
    return [OrganizationWithRole(**dict(r)) for r in rows]


async def ensure_personal_organization(
    conn: Conn, user_id: uuid.UUID, display: str
) -> Organization:
    """The user's personal organization (slug ``personal-<user id>``), created with the user as
    admin when missing; admin membership is restored if it was lost."""
    slug = personal_slug(user_id)
    org = await create_organization(conn, name=f"{display}'s Org", slug=slug, is_personal=True)
    if org is None:
        org = await find_organization_by_slug(conn, slug)
        assert org is not None
    await conn.execute(
        """INSERT INTO organization_member_metadata (organization_id, user_id, role)
           VALUES ($1, $2, 'admin')
           ON CONFLICT (organization_id, user_id) DO UPDATE SET role = 'admin'""",
        org.id,
        user_id,
    )
    return org


# --- members --------------------------------------------------------------------------------------


async def get_role(conn: Conn, org_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The user's role in the organization, or ``None`` when not a member."""
    role = await conn.fetchval(
        """SELECT role::text FROM organization_member_metadata
           WHERE organization_id = $1 AND user_id = $2""",
        org_id,
        user_id,
    )
    return None if role is None else str(role)


async def add_member(conn: Conn, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> bool:
    status = await conn.execute(
        """INSERT INTO organization_member_metadata (organization_id, user_id, role)
           VALUES ($1, $2, $3::member_role) ON CONFLICT DO NOTHING""",
        org_id,
        user_id,
        role,
    )
    return bool(status == "INSERT 0 1")


async def list_members(conn: Conn, org_id: uuid.UUID) -> list[Member]:
    rows = await conn.fetch(
        """SELECT u.id AS user_id, u.email, u.username, u.first_name, u.last_name,
                  m.role::text AS role, m.joined_at
           FROM organization_member_metadata m JOIN users u ON u.id = m.user_id
           WHERE m.organization_id = $1 ORDER BY m.joined_at, u.id""",
        org_id,
    )
    return [Member(**dict(r)) for r in rows]


async def lock_admins(conn: Conn, org_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the organization's admin rows and return their user ids (call inside a transaction)."""
    rows = await conn.fetch(
        """SELECT user_id FROM organization_member_metadata
           WHERE organization_id = $1 AND role = 'admin' ORDER BY user_id FOR UPDATE""",
        org_id,
    )
    return [r["user_id"] for r in rows]


async def set_member_role(conn: Conn, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> bool:
    status = await conn.execute(
        """UPDATE organization_member_metadata SET role = $3::member_role
           WHERE organization_id = $1 AND user_id = $2""",
        org_id,
        user_id,
        role,
    )
    return bool(status == "UPDATE 1")


async def remove_member(conn: Conn, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    status = await conn.execute(
        "DELETE FROM organization_member_metadata WHERE organization_id = $1 AND user_id = $2",
        org_id,
        user_id,
    )
    return bool(status == "DELETE 1")


# --- invitations ----------------------------------------------------------------------------------

_INV_COLS = (
    "id, organization_id, invited_by_user_id, email, role::text AS role, status::text AS status, "
    "expires_at, created_at"
)


async def create_invitation(
    conn: Conn,
    *,
    org_id: uuid.UUID,
    invited_by: uuid.UUID,
    email: str,
    role: Role,
    token_hash: str,
    ttl_s: float,
) -> Invitation | None:
    """A pending invitation found by ``token_hash``; ``None`` if one is already pending for the
    email in this organization."""
    row = await conn.fetchrow(
        f"""INSERT INTO organization_invitations
                (organization_id, invited_by_user_id, email, role, token_hash, expires_at)
            VALUES ($1, $2, $3, $4::member_role, $5, now() + make_interval(secs => $6))
            ON CONFLICT DO NOTHING
            RETURNING {_INV_COLS}""",  # noqa: S608
        org_id,
        invited_by,
        email,
        role,
        token_hash,
        ttl_s,
    )
    return None if row is None else Invitation(**dict(row))


async def list_invitations(conn: Conn, org_id: uuid.UUID) -> list[Invitation]:
    rows = await conn.fetch(
        f"""SELECT {_INV_COLS} FROM organization_invitations
            WHERE organization_id = $1 ORDER BY created_at DESC, id""",  # noqa: S608
        org_id,
    )
    return [Invitation(**dict(r)) for r in rows]


async def get_invitation_by_token_hash(
    conn: Conn, token_hash: str, *, for_update: bool = False
) -> tuple[Invitation, bool] | None:
    """The invitation whose token hashes to ``token_hash`` and whether it has expired (by the
    database clock)."""
    sql = f"""SELECT {_INV_COLS}, expires_at <= now() AS expired
              FROM organization_invitations WHERE token_hash = $1"""  # noqa: S608
    if for_update:
        sql += " FOR UPDATE"
    row = await conn.fetchrow(sql, token_hash)
    if row is None:
        return None
    data = dict(row)
    expired = bool(data.pop("expired"))
    return Invitation(**data), expired


async def set_invitation_status(conn: Conn, invitation_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        "UPDATE organization_invitations SET status = $2::invitation_status WHERE id = $1",
        invitation_id,
        status,
    )


async def revoke_invitation(conn: Conn, org_id: uuid.UUID, invitation_id: uuid.UUID) -> bool:
    status = await conn.execute(
        "DELETE FROM organization_invitations WHERE id = $1 AND organization_id = $2",
        invitation_id,
        org_id,
    )
    return bool(status == "DELETE 1")


async def expire_invitations(conn: Conn) -> int:
    """Mark pending invitations past their expiry as expired."""
    status = await conn.execute(
        """UPDATE organization_invitations SET status = 'expired'
           WHERE status = 'pending' AND expires_at <= now()"""
    )
    return int(status.split()[-1])
