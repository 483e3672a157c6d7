"""Who is calling: a Bearer access JWT (with a live session), a personal access token, or a
browser session cookie (:mod:`vk_hive.auth.browser`)."""

from __future__ import annotations

import uuid

import msgspec

from vk_hive.auth import repository as repo
from vk_hive.auth.browser import csrf_matches, find_browser_session
from vk_hive.auth.pat import looks_like_pat, verify_pat
from vk_hive.auth.sessions import inactive
from vk_hive.auth.tokens import TokenError, TokenSigner
from vk_hive.errors import Forbidden, Unauthorized
from vk_hive.store.db import Database

__all__ = [
    "SAFE_METHODS",
    "Principal",
    "authenticate",
    "authenticate_cookie",
    "bearer_token",
    "check_csrf",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing: a cookie-authenticated request of any other method must carry
the session's CSRF token and, when it names an ``Origin``, the hive's own."""


class Principal(msgspec.Struct, frozen=True):
    user: repo.User
    session_id: uuid.UUID | None
    via: str  # "jwt" | "pat" | "cookie"

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


def check_csrf(
    session_token: str, *, origin: str | None, own_origins: frozenset[str], presented: str | None
) -> None:
    """A state-changing request of a browser session: 403 when its ``Origin`` is present and not
    one of ``own_origins``, or when ``presented`` is not the session's CSRF token."""
    if origin is not None and origin.rstrip("/").lower() not in own_origins:
        raise Forbidden("cross_origin: the request's Origin is not this hive", code="csrf")
    if not csrf_matches(session_token, presented):
        raise Forbidden(
            "csrf: a cookie-authenticated request must send the session's X-CSRF-Token",
            code="csrf",
        )


async def authenticate_cookie(
    db: Database,
    cookie: str,
    *,
    method: str,
    origin: str | None,
    own_origins: frozenset[str],
    csrf_token: str | None,
    inactivity_s: float,
) -> Principal:
    """The caller of a browser session cookie. A state-changing request (a method not in
    :data:`SAFE_METHODS`) is refused (403) when its ``Origin`` is present and not one of
    ``own_origins``, or when ``csrf_token`` is not the session's."""
    async with db.acquire() as conn:
        found = await find_browser_session(conn, cookie, inactivity_s=inactivity_s)
    if found is None:
        raise Unauthorized("invalid_session: the session cookie is not valid", code="invalid_token")
    if method.upper() not in SAFE_METHODS:
        check_csrf(found.csrf_token, origin=origin, own_origins=own_origins, presented=csrf_token)
    return Principal(user=found.user, session_id=found.session_id, via="cookie")
