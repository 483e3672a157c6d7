"""Identity, sessions and personal access tokens: ``/v1/me``, ``/v1/identity``, ``/v1/profile``,
``/v1/tokens/refresh``, ``/v1/oauth/logout``, ``/v1/tokens/personal``."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from vk_hive.api.deps import Auth, Ctx
from vk_hive.api.ratelimit import AUTH_LIMITED
from vk_hive.api.types import Name, TokenText
from vk_hive.auth import repository as auth_repo
from vk_hive.auth.pat import IssuedPat, issue_pat
from vk_hive.auth.sessions import TokenPair, logout, refresh_tokens
from vk_hive.errors import NotFound
from vk_hive.tenancy import repository as tenancy_repo
from vk_shared.openapi import answers

__all__ = ["IdentityController"]


class UserOut(msgspec.Struct, frozen=True):
    id: uuid.UUID
    email: str
    username: str | None
    first_name: str | None
    last_name: str | None
    created_at: datetime


class Me(msgspec.Struct, frozen=True):
    user: UserOut
    organizations: list[tenancy_repo.OrganizationWithRole]


class Identity(msgspec.Struct, frozen=True):
    user_id: FromPath[uuid.UUID]
    email: str
    username: str | None
    auth_method: str


class Profile(msgspec.Struct, frozen=True):
    user: UserOut
    providers: list[auth_repo.OAuthAccount]


class RefreshIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: FromPath[TokenText]


class PatIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name


class PatOut(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    token_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


def user_out(user: auth_repo.User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        created_at=user.created_at,
    )


class IdentityController(Controller):
    tags = ["identity"]

    @get("/me", summary="The caller and their organizations with role")
    async def me(self, ctx: Ctx, principal: Auth) -> Me:
        async with ctx.database.acquire() as conn:
            orgs = await tenancy_repo.list_user_organizations(conn, principal.user_id)
        return Me(user=user_out(principal.user), organizations=orgs)

    @get("/identity", summary="Who the bearer token belongs to")
    async def identity(self, principal: Auth) -> Identity:
        return Identity(
            user_id=principal.user_id,
            email=principal.user.email,
            username=principal.user.username,
            auth_method=principal.via,
        )

    @get("/profile", summary="The caller with linked OAuth accounts")
    async def profile(self, ctx: Ctx, principal: Auth) -> Profile:
        async with ctx.database.acquire() as conn:
            accounts = await auth_repo.list_oauth_accounts(conn, principal.user_id)
        return Profile(user=user_out(principal.user), providers=accounts)

    @post(
        "/tokens/refresh",
        summary="Rotate a refresh token",
        status_code=HTTP_200_OK,
        opt={**AUTH_LIMITED, **answers(401)},
    )
    async def refresh(self, ctx: Ctx, data: JSONBody[RefreshIn]) -> TokenPair:
        return await refresh_tokens(
            ctx.database,
            ctx.signer,
            data.refresh_token,
            inactivity_s=ctx.settings.session_inactivity_s,
        )

    @post("/oauth/logout", summary="Revoke the current session", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, ctx: Ctx, principal: Auth) -> None:
        if principal.session_id is not None:
            async with ctx.database.acquire() as conn:
                await logout(conn, principal.session_id)

    @post(
        "/tokens/personal",
        summary="Create a personal access token (shown once)",
        status_code=HTTP_201_CREATED,
    )
    async def create_pat(self, ctx: Ctx, principal: Auth, data: JSONBody[PatIn]) -> IssuedPat:
        async with ctx.database.transaction() as conn:
            return await issue_pat(conn, principal.user_id, data.name)

    @get("/tokens/personal", summary="List personal access tokens (never the secret)")
    async def list_pats(self, ctx: Ctx, principal: Auth) -> list[PatOut]:
        async with ctx.database.acquire() as conn:
            pats = await auth_repo.list_pats(conn, principal.user_id)
        return [
            PatOut(
                id=p.id,
                name=p.name,
                token_prefix=p.token_prefix,
                created_at=p.created_at,
                last_used_at=p.last_used_at,
                expires_at=p.expires_at,
                revoked_at=p.revoked_at,
            )
            for p in pats
        ]

    @delete(
        "/tokens/personal/{pat_id:uuid}",
        summary="Revoke a personal access token",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke_pat(self, ctx: Ctx, principal: Auth, pat_id: FromPath[uuid.UUID]) -> None:
        async with ctx.database.acquire() as conn:
            if not await auth_repo.revoke_pat(conn, principal.user_id, pat_id):
                raise NotFound("token not found")
