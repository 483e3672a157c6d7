"""SQL for users, sessions, revoked refresh tokens, OAuth accounts, handoffs and personal access
tokens. Connection-first functions; msgspec Structs out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import asyncpg
import msgspec

__all__ = [
    "AuthSession",
    "Handoff",
    "OAuthAccount",
    "PersonalAccessToken",
    "User",
]

Conn: TypeAlias = asyncpg.Connection


class User(msgspec.Struct, frozen=True):
    id: uuid.UUID
    email: str
    first_name: str | None
    last_name: str | None
    username: str | None
    created_at: datetime
    updated_at: datetime


class AuthSession(msgspec.Struct, frozen=True):
    id: uuid.UUID
    user_id: uuid.UUID
    refresh_token_id: uuid.UUID | None
    refresh_token_issued_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class OAuthAccount(msgspec.Struct, frozen=True):
    id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    provider_user_id: str
    email: str | None
    username: str | None
    display_name: str | None
    avatar_url: str | None


class Handoff(msgspec.Struct, frozen=True):
    id: uuid.UUID
    provider: str
    state: str
    return_to: str
    app_challenge: str
    app_code_hash: str | None
    status: str
    error_code: str | None
    expires_at: datetime
    authorized_at: datetime | None
    redeemed_at: datetime | None
    user_id: uuid.UUID | None
    session_id: uuid.UUID | None


class PersonalAccessToken(msgspec.Struct, frozen=True):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    token_prefix: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


_T = TypeVar("_T")


def _one(cls: type[_T], row: asyncpg.Record | None) -> _T | None:
    return None if row is None else cls(**dict(row))


# --- users ----------------------------------------------------------------------------------------

_USER_COLS = "id, email, first_name, last_name, username, created_at, updated_at"


async def get_user(conn: Conn, user_id: uuid.UUID) -> User | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLS} FROM users WHERE id = $1", user_id)  # noqa: S608
    return _one(User, row)


async def find_user_by_email(conn: Conn, email: str) -> User | None:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLS} FROM users WHERE lower(email) = lower($1)",  # noqa: S608
        email,
    )
    return _one(User, row)


async def upsert_user(
    conn: Conn,
    *,
    email: str,
    username: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """Create the user, or return the existing one with this email (case-insensitive), filling in
    names it does not have yet."""
    existing = await find_user_by_email(conn, email)
    if existing is not None:
        row = await conn.fetchrow(
            f"""UPDATE users SET username = COALESCE(username, $2),
                    first_name = COALESCE(first_name, $3), last_name = COALESCE(last_name, $4)
                WHERE id = $1 RETURNING {_USER_COLS}""",  # noqa: S608
            existing.id,
            username,
            first_name,
            last_name,
        )
    else:
        row = await conn.fetchrow(
            f"""INSERT INTO users (email, username, first_name, last_name)
                VALUES ($1, $2, $3, $4) RETURNING {_USER_COLS}""",  # noqa: S608
            email,
            username,
            first_name,
            last_name,
        )
    user = _one(User, row)
    assert user is not None
    return user


# --- sessions -------------------------------------------------------------------------------------

_SESSION_COLS = (
    "id, user_id, refresh_token_id, refresh_token_issued_at, created_at, last_used_at, revoked_at"
)


async def create_session(conn: Conn, user_id: uuid.UUID) -> AuthSession:
    row = await conn.fetchrow(
        f"INSERT INTO auth_sessions (user_id) VALUES ($1) RETURNING {_SESSION_COLS}",  # noqa: S608
        user_id,
    )
    session = _one(AuthSession, row)
    assert session is not None
    return session


async def get_session(
    conn: Conn, session_id: uuid.UUID, *, for_update: bool = False
) -> AuthSession | None:
    sql = f"SELECT {_SESSION_COLS} FROM auth_sessions WHERE id = $1"  # noqa: S608
    if for_update:
        sql += " FOR UPDATE"
    return _one(AuthSession, await conn.fetchrow(sql, session_id))


async def touch_session(conn: Conn, session_id: uuid.UUID) -> None:
    """Mark the session used today (at most one write per day)."""
    await conn.execute(
        """UPDATE auth_sessions SET last_used_at = date_trunc('day', now())
           WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < date_trunc('day', now()))""",
        session_id,
    )


async def set_refresh_token(conn: Conn, session_id: uuid.UUID, jti: uuid.UUID) -> None:
    await conn.execute(
        """UPDATE auth_sessions SET refresh_token_id = $2, refresh_token_issued_at = now()
           WHERE id = $1""",
        session_id,
        jti,
    )


async def rotate_refresh_token(
    conn: Conn, session_id: uuid.UUID, user_id: uuid.UUID, old: uuid.UUID, new: uuid.UUID
) -> bool:
    """Swap the session's refresh id old -> new and record the old one; False when the session's
    current id is not ``old`` (someone rotated concurrently)."""
    status = await conn.execute(
        """UPDATE auth_sessions SET refresh_token_id = $3, refresh_token_issued_at = now()
           WHERE id = $1 AND refresh_token_id = $2 AND revoked_at IS NULL""",
        session_id,
        old,
        new,
    )
    if status != "UPDATE 1":
        return False
    await conn.execute(
        """INSERT INTO revoked_refresh_tokens (token_id, user_id, revoked_reason)
           VALUES ($1, $2, 'token_rotation') ON CONFLICT (token_id) DO NOTHING""",
        old,
        user_id,
    )
    return True


async def is_refresh_token_revoked(conn: Conn, jti: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM revoked_refresh_tokens WHERE token_id = $1", jti)
    )


async def revoke_session(conn: Conn, session_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        session_id,
    )


async def revoke_all_user_sessions(conn: Conn, user_id: uuid.UUID) -> int:
    """Record every current refresh id as reused and revoke all of the user's sessions."""
    await conn.execute(
        """INSERT INTO revoked_refresh_tokens (token_id, user_id, revoked_reason)
           SELECT refresh_token_id, user_id, 'reuse_of_revoked_token' FROM auth_sessions
           WHERE user_id = $1 AND refresh_token_id IS NOT NULL
           ON CONFLICT (token_id) DO NOTHING""",
        user_id,
    )
    status = await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
    return int(status.split()[-1])


# --- OAuth accounts -------------------------------------------------------------------------------

_ACCOUNT_COLS = "id, user_id, provider, provider_user_id, email, username, display_name, avatar_url"


async def get_oauth_account(
    conn: Conn, provider: str, provider_user_id: str
) -> OAuthAccount | None:
    row = await conn.fetchrow(
        f"""SELECT {_ACCOUNT_COLS} FROM oauth_accounts
            WHERE provider = $1 AND provider_user_id = $2""",  # noqa: S608
        provider,
        provider_user_id,
    )
    return _one(OAuthAccount, row)


async def upsert_oauth_account(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    provider: str,
    provider_user_id: str,
    email: str | None,
    username: str | None,
    display_name: str | None,
    avatar_url: str | None,
) -> OAuthAccount:
    row = await conn.fetchrow(
        f"""INSERT INTO oauth_accounts
                (user_id, provider, provider_user_id, email, username, display_name, avatar_url)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (provider, provider_user_id) DO UPDATE SET
                email = EXCLUDED.email, username = EXCLUDED.username,
                display_name = EXCLUDED.display_name, avatar_url = EXCLUDED.avatar_url
            RETURNING {_ACCOUNT_COLS}""",  # noqa: S608
        user_id,
        provider,
        provider_user_id,
        email,
        username,
        display_name,
        avatar_url,
    )
    account = _one(OAuthAccount, row)
    assert account is not None
    return account


async def list_oauth_accounts(conn: Conn, user_id: uuid.UUID) -> list[OAuthAccount]:
    rows = await conn.fetch(
        f"SELECT {_ACCOUNT_COLS} FROM oauth_accounts WHERE user_id = $1 ORDER BY provider",  # noqa: S608
        user_id,
    )
    return [OAuthAccount(**dict(r)) for r in rows]


# --- OAuth handoffs -------------------------------------------------------------------------------

_HANDOFF_COLS = (
    "id, provider, state, return_to, app_challenge, app_code_hash, status, error_code, expires_at, "
    "authorized_at, redeemed_at, user_id, session_id"
)


async def create_handoff(
    conn: Conn,
    *,
    provider: str,
    state: str,
    return_to: str,
    app_challenge: str,
    ttl_s: float,
) -> Handoff:
    row = await conn.fetchrow(
        f"""INSERT INTO oauth_handoffs (provider, state, return_to, app_challenge, expires_at)
            VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
            RETURNING {_HANDOFF_COLS}""",  # noqa: S608
        provider,
        state,
        return_to,
        app_challenge,
        ttl_s,
    )
    handoff = _one(Handoff, row)
    assert handoff is not None
    return handoff


async def get_handoff(
    conn: Conn, handoff_id: uuid.UUID, *, for_update: bool = False
) -> Handoff | None:
    sql = (
        f"SELECT {_HANDOFF_COLS}, expires_at <= now() AS _expired FROM oauth_handoffs WHERE id = $1"  # noqa: S608
    )
    return await _handoff_row(conn, sql + (" FOR UPDATE" if for_update else ""), handoff_id)


async def get_handoff_by_state(conn: Conn, state: str) -> Handoff | None:
    sql = f"SELECT {_HANDOFF_COLS}, expires_at <= now() AS _expired FROM oauth_handoffs WHERE state = $1 FOR UPDATE"  # noqa: S608, E501
    return await _handoff_row(conn, sql, state)


async def _handoff_row(conn: Conn, sql: str, arg: Any) -> Handoff | None:
    row = await conn.fetchrow(sql, arg)
    if row is None:
        return None
    data = dict(row)
    data.pop("_expired")
    return Handoff(**data)


async def handoff_expired(conn: Conn, handoff_id: uuid.UUID) -> bool:
    """Database-clock check, so the hive's and the database's clocks need not agree."""
    return bool(
        await conn.fetchval(
            "SELECT expires_at <= now() FROM oauth_handoffs WHERE id = $1", handoff_id
        )
    )


async def set_handoff_status(
    conn: Conn, handoff_id: uuid.UUID, status: str, error_code: str | None = None
) -> None:
    await conn.execute(
        """UPDATE oauth_handoffs SET status = $2, error_code = COALESCE($3, error_code)
           WHERE id = $1""",
        handoff_id,
        status,
        error_code,
    )


async def mark_handoff_authorized(
    conn: Conn,
    handoff_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    app_code_hash: str,
) -> None:
    await conn.execute(
        """UPDATE oauth_handoffs SET status = 'authorized', authorized_at = now(), user_id = $2,
               session_id = $3, app_code_hash = $4
           WHERE id = $1 AND status = 'pending'""",
        handoff_id,
        user_id,
        session_id,
        app_code_hash,
    )


async def mark_handoff_redeemed(conn: Conn, handoff_id: uuid.UUID) -> bool:
    status = await conn.execute(
        """UPDATE oauth_handoffs SET status = 'redeemed', redeemed_at = now(),
               encrypted_provider_tokens = NULL
           WHERE id = $1 AND status = 'authorized'""",
        handoff_id,
    )
    return bool(status == "UPDATE 1")


async def expire_stale_handoffs(conn: Conn) -> int:
    """Mark pending/authorized handoffs past their expiry as expired (and wipe provider tokens)."""
    status = await conn.execute(
        """UPDATE oauth_handoffs SET status = 'expired', encrypted_provider_tokens = NULL
           WHERE status IN ('pending', 'authorized') AND expires_at <= now()"""
    )
    return int(status.split()[-1])


async def delete_old_handoffs(conn: Conn, older_than_s: float) -> int:
    status = await conn.execute(
        """DELETE FROM oauth_handoffs
           WHERE status IN ('redeemed', 'expired', 'error')
             AND expires_at < now() - make_interval(secs => $1)""",
        older_than_s,
    )
    return int(status.split()[-1])


# --- personal access tokens -----------------------------------------------------------------------

_PAT_COLS = (
    "id, user_id, name, token_prefix, token_hash, created_at, last_used_at, expires_at, revoked_at"
)


async def create_pat(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    name: str,
    token_prefix: str,
    token_hash: str,
    expires_at: datetime | None = None,
) -> PersonalAccessToken:
    row = await conn.fetchrow(
        f"""INSERT INTO personal_access_tokens (user_id, name, token_prefix, token_hash, expires_at)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_PAT_COLS}""",  # noqa: S608
        user_id,
        name,
        token_prefix,
        token_hash,
        expires_at,
    )
    pat = _one(PersonalAccessToken, row)
    assert pat is not None
    return pat


async def find_pats_by_prefix(conn: Conn, prefix: str) -> list[PersonalAccessToken]:
    rows = await conn.fetch(
        f"""SELECT {_PAT_COLS} FROM personal_access_tokens
            WHERE token_prefix = $1 AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > now())""",  # noqa: S608
        prefix,
    )
    return [PersonalAccessToken(**dict(r)) for r in rows]


async def touch_pat(conn: Conn, pat_id: uuid.UUID) -> None:
    await conn.execute(
        """UPDATE personal_access_tokens SET last_used_at = now()
           WHERE id = $1
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')""",
        pat_id,
    )


async def list_pats(conn: Conn, user_id: uuid.UUID) -> list[PersonalAccessToken]:
    rows = await conn.fetch(
        f"""SELECT {_PAT_COLS} FROM personal_access_tokens WHERE user_id = $1
            ORDER BY created_at DESC""",  # noqa: S608
        user_id,
    )
    return [PersonalAccessToken(**dict(r)) for r in rows]


async def revoke_pat(conn: Conn, user_id: uuid.UUID, pat_id: uuid.UUID) -> bool:
    status = await conn.execute(
        """UPDATE personal_access_tokens SET revoked_at = now()
           WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL""",
        pat_id,
        user_id,
    )
    return bool(status == "UPDATE 1")
