"""Sessions and the refresh-token rotation with reuse detection (security.md §2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import structlog

from vk_hive.auth import repository as repo
from vk_hive.auth.tokens import TokenError, TokenSigner
from vk_hive.store.db import Database

__all__ = ["TokenPair", "logout", "refresh_tokens", "start_session", "tokens_for_session"]

log = structlog.get_logger("vk_hive.auth")


class TokenPair(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - a scheme name
    expires_in: int = 0


def _pair(
    signer: TokenSigner, user_id: uuid.UUID, session_id: uuid.UUID, jti: uuid.UUID
) -> TokenPair:
    return TokenPair(
        access_token=signer.mint_access(user_id, session_id),
        refresh_token=signer.mint_refresh(user_id, session_id, jti),
        expires_in=max(1, round(signer.access_ttl_s)),
    )


async def tokens_for_session(
    conn: repo.Conn, signer: TokenSigner, session: repo.AuthSession
) -> TokenPair:
    """Mint a pair for an existing session and make its refresh id the session's only valid one."""
    jti = uuid.uuid4()
    await repo.set_refresh_token(conn, session.id, jti)
    return _pair(signer, session.user_id, session.id, jti)


async def start_session(conn: repo.Conn, signer: TokenSigner, user_id: uuid.UUID) -> TokenPair:
    """A new session for the user, with its first token pair."""
    session = await repo.create_session(conn, user_id)
    return await tokens_for_session(conn, signer, session)


def inactive(session: repo.AuthSession, limit_s: float) -> bool:
    last = session.last_used_at or session.created_at
    return (datetime.now(UTC) - last).total_seconds() > limit_s


async def refresh_tokens(
    db: Database, signer: TokenSigner, raw: str, *, inactivity_s: float
) -> TokenPair:
    """Rotate: the presented refresh token must be the session's current one. Presenting any
    other (an already rotated one) revokes every session of the user."""
    claims = signer.verify_refresh(raw)
    outcome: str
    pair: TokenPair | None = None
    async with db.transaction() as conn:
        session = await repo.get_session(conn, claims.session_id, for_update=True)
        if session is None or session.user_id != claims.sub:
            raise TokenError("invalid_token", "unknown session")
        if session.revoked_at is not None:
            raise TokenError("session_revoked", "the session was revoked")
        if inactive(session, inactivity_s):
            await repo.revoke_session(conn, session.id)
            outcome = "inactive"
        elif session.refresh_token_id != claims.jti or await repo.is_refresh_token_revoked(
            conn, claims.jti
        ):
            revoked = await repo.revoke_all_user_sessions(conn, session.user_id)
            log.warning(
                "auth.refresh_reuse_detected", user_id=str(session.user_id), revoked=revoked
            )
            outcome = "reuse"
        else:
            new_jti = uuid.uuid4()
            if await repo.rotate_refresh_token(
                conn, session.id, session.user_id, claims.jti, new_jti
            ):
                pair = _pair(signer, session.user_id, session.id, new_jti)
                outcome = "ok"
            else:
                await repo.revoke_all_user_sessions(conn, session.user_id)
                outcome = "reuse"
    if outcome == "inactive":
        raise TokenError("session_expired", "the session expired after inactivity")
    if outcome == "reuse" or pair is None:
        raise TokenError("token_reuse_detected", "refresh token reuse detected; sessions revoked")
    return pair


async def logout(conn: repo.Conn, session_id: uuid.UUID) -> None:
    await repo.revoke_session(conn, session_id)
