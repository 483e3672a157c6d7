"""Who is calling: a Bearer access JWT (with a live session) or a personal access token."""

from __future__ import annotations

import uuid

import msgspec

from vk_hive.auth import repository as repo
from vk_hive.auth.pat import looks_like_pat, verify_pat
from vk_hive.auth.sessions import inactive
from vk_hive.auth.tokens import TokenError, TokenSigner
from vk_hive.errors import Unauthorized
from vk_hive.store.db import Database

__all__ = ["Principal", "authenticate", "bearer_token"]


class Principal(msgspec.Struct, frozen=True):
    user: repo.User
    session_id: uuid.UUID | None
    via: str  # "jwt" | "pat"

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing_token: an Authorization: Bearer token is required")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("invalid_token: expected 'Authorization: Bearer <token>'")
    if len(token) > 4096:
        raise Unauthorized("invalid_token: token too long")
    return token


async def authenticate(
    db: Database, signer: TokenSigner, header: str | None, *, inactivity_s: float
) -> Principal:
    token = bearer_token(header)
    if looks_like_pat(token):
        async with db.acquire() as conn:
            pat = await verify_pat(conn, token)
            user = await repo.get_user(conn, pat.user_id)
        if user is None:
            raise Unauthorized("invalid_token: unknown user")
        return Principal(user=user, session_id=None, via="pat")
    claims = signer.verify_access(token)
    async with db.acquire() as conn:
        session = await repo.get_session(conn, claims.session_id)
        if session is None or session.user_id != claims.sub:
            raise TokenError("invalid_token", "unknown session")
        if session.revoked_at is not None:
            raise TokenError("session_revoked", "the session was revoked")
        if inactive(session, inactivity_s):
            await repo.revoke_session(conn, session.id)
            raise TokenError("session_expired", "the session expired after inactivity")
        user = await repo.get_user(conn, session.user_id)
        if user is None:
            raise TokenError("invalid_token", "unknown user")
        await repo.touch_session(conn, session.id)
    return Principal(user=user, session_id=session.id, via="jwt")
