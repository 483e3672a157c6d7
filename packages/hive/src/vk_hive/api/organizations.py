"""Organizations, members and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.ratelimit import AUTH_LIMITED
from vk_hive.api.types import Email, Name, Role, Slug, TokenPath
from vk_hive.tenancy import repository as repo
from vk_hive.tenancy import service
from vk_shared.openapi import answers

__all__ = ["InvitationController", "OrganizationController"]


class OrganizationIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    slug: Slug | None = None


class OrganizationPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name


class RoleIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role


class InvitationIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email
    role: Role = "member"


class RevokeInvitationIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    invitation_id: uuid.UUID


class InvitationPublic(msgspec.Struct, frozen=True):
    """What the holder of an invitation token may see."""

    id: uuid.UUID
    organization_id: uuid.UUID
    organization_name: str
    email: str
    role: str
    status: str
    expires_at: datetime


class OrganizationController(Controller):
    path = "/organizations"
    tags = ["organizations"]

    @get("/", summary="Organizations the caller belongs to, with role")
    async def list_mine(self, ctx: Ctx, principal: Auth) -> list[repo.OrganizationWithRole]:
        async with ctx.database.acquire() as conn:
            return await repo.list_user_organizations(conn, principal.user_id)

    @post(
        "/",
        summary="Create an organization (the caller becomes admin)",
        status_code=HTTP_201_CREATED,
        opt=answers(409),
    )
    async def create(
        self, ctx: Ctx, principal: Auth, data: JSONBody[OrganizationIn]
    ) -> repo.OrganizationWithRole:
        return await service.create_organization(ctx.database, principal, data.name, data.slug)

    @get("/{org_id:uuid}", summary="One organization (members only)")
    async def get_one(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID]
    ) -> repo.OrganizationWithRole:
        return await service.get_organization(ctx.database, principal, org_id)

    @patch("/{org_id:uuid}", summary="Rename (admin)", opt=answers(409))
    async def rename(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        data: JSONBody[OrganizationPatch],
    ) -> repo.OrganizationWithRole:
        return await service.rename_organization(ctx.database, principal, org_id, data.name)

    @delete(
        "/{org_id:uuid}",
        summary="Delete (admin; not a personal organization)",
        status_code=HTTP_204_NO_CONTENT,
        opt=answers(409),
    )
    async def delete_one(self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID]) -> None:
        await service.delete_organization(ctx.database, principal, org_id)

    @get("/{org_id:uuid}/members", summary="Members with role")
    async def members(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID]
    ) -> list[repo.Member]:
        return await service.list_members(ctx.database, principal, org_id)

    @patch(
        "/{org_id:uuid}/members/{user_id:uuid}/role",
        summary="Change a member's role (admin)",
        opt=answers(409),
    )
    async def change_role(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleIn],
    ) -> list[repo.Member]:
        await service.change_role(ctx.database, principal, org_id, user_id, data.role)
        return await service.list_members(ctx.database, principal, org_id)

    @delete(
        "/{org_id:uuid}/members/{user_id:uuid}",
        summary="Remove a member (admin)",
        status_code=HTTP_204_NO_CONTENT,
        opt=answers(409),
    )
    async def remove_member(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID], user_id: FromPath[uuid.UUID]
    ) -> None:
        await service.remove_member(ctx.database, principal, org_id, user_id)

    @post(
        "/{org_id:uuid}/invitations",
        summary="Invite by email (admin); the token is shown here only",
        status_code=HTTP_201_CREATED,
        opt=answers(409),
    )
    async def invite(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID], data: JSONBody[InvitationIn]
    ) -> service.CreatedInvitation:
        return await service.create_invitation(
            ctx.database, principal, org_id, data.email, data.role, ctx.settings.invitation_ttl_s
        )

    @get("/{org_id:uuid}/invitations", summary="Invitations (admin; never their tokens)")
    async def invitations(
        self, ctx: Ctx, principal: Auth, org_id: FromPath[uuid.UUID]
    ) -> list[repo.Invitation]:
        return await service.list_invitations(ctx.database, principal, org_id)

    @post(
        "/{org_id:uuid}/invitations/revoke",
        summary="Revoke an invitation (admin)",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke_invitation(
        self,
        ctx: Ctx,
        principal: Auth,
        org_id: FromPath[uuid.UUID],
        data: JSONBody[RevokeInvitationIn],
    ) -> None:
        await service.revoke_invitation(ctx.database, principal, org_id, data.invitation_id)


class InvitationController(Controller):
    path = "/invitations"
    tags = ["organizations"]
    opt = AUTH_LIMITED

    @get("/{token:str}", summary="Look at an invitation by its token (public)")
    async def show(self, ctx: Ctx, token: TokenPath) -> InvitationPublic:
        invitation, org, expired = await service.find_invitation(ctx.database, token)
        return InvitationPublic(
            id=invitation.id,
            organization_id=invitation.organization_id,
            organization_name=org.name,
            email=invitation.email,
            role=invitation.role,
            status="expired" if expired and invitation.status == "pending" else invitation.status,
            expires_at=invitation.expires_at,
        )

    @post(
        "/{token:str}/accept",
        summary="Accept an invitation (the caller's email must match)",
        status_code=HTTP_200_OK,
        opt=answers(403, 409),
    )
    async def accept(
        self, ctx: Ctx, principal: Auth, token: TokenPath
    ) -> repo.OrganizationWithRole:
        return await service.accept_invitation(ctx.database, principal, token)
