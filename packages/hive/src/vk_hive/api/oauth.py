"""OAuth handoff endpoints (public): init, start, callback, redeem."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK

from vk_hive.api.deps import Ctx
from vk_hive.api.ratelimit import AUTH_LIMITED
from vk_hive.api.types import QueryText, TokenText
from vk_hive.auth import oauth
from vk_hive.auth.sessions import TokenPair
from vk_shared.openapi import answers

__all__ = ["OAuthController"]

Provider = Literal["github", "google"]


class InitIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    provider: Provider
    return_to: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    app_challenge: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RedeemIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    handoff_id: uuid.UUID
    app_code: TokenText
    app_verifier: TokenText


class OAuthController(Controller):
    path = "/oauth"
    tags = ["oauth"]
    opt = AUTH_LIMITED

    @post("/web/init", summary="Start an OAuth handoff", status_code=HTTP_200_OK, opt=answers(404))
    async def init(self, ctx: Ctx, data: JSONBody[InitIn]) -> oauth.HandoffCreated:
        return await oauth.init_handoff(
            ctx.database,
            ctx.settings,
            provider=data.provider,
            return_to=data.return_to,
            app_challenge=data.app_challenge,
        )

    @get(
        "/{provider:str}/start",
        summary="Redirect to the provider's authorize page",
        opt=answers(409),
    )
    async def start(
        self, ctx: Ctx, provider: FromPath[Provider], handoff_id: FromQuery[uuid.UUID]
    ) -> Redirect:
        url = await oauth.start_url(
            ctx.database, ctx.settings, provider=provider, handoff_id=handoff_id
        )
        return Redirect(url, status_code=302)

    @get(
        "/{provider:str}/callback",
        summary="Provider callback; redirects to return_to",
        opt=answers(409),
    )
    async def callback(
        self,
        ctx: Ctx,
        provider: FromPath[Provider],
        oauth_state: Annotated[str | None, QueryParameter(name="state", max_length=2048)] = None,
        code: QueryText = None,
        error: QueryText = None,
    ) -> Redirect:
        url = await oauth.callback(
            ctx.database, ctx.settings, provider=provider, state=oauth_state, code=code, error=error
        )
        return Redirect(url, status_code=302)

    @post(
        "/web/redeem",
        summary="Exchange app_code + verifier for tokens",
        status_code=HTTP_200_OK,
        opt=answers(401, 404, 409),
    )
    async def redeem(self, ctx: Ctx, data: JSONBody[RedeemIn]) -> TokenPair:
        return await oauth.redeem(
            ctx.database,
            ctx.settings,
            ctx.signer,
            handoff_id=data.handoff_id,
            app_code=data.app_code,
            app_verifier=data.app_verifier,
        )
