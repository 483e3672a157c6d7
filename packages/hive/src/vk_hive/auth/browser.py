"""Browser sign-in: single-use login links and cookie sessions with a CSRF secret.

A login link (``vk-hive admin login-link``) carries a random token of which only the SHA-256 is
stored; using it marks it used in one ``UPDATE … WHERE used_at IS NULL AND expires_at > now()``,
so two concurrent uses cannot both win. It starts a browser session: an ``auth_sessions`` row
whose ``session_secret_hash`` is the SHA-256 of the cookie value and whose ``csrf_token`` is the
per-session secret a page sends back in ``X-CSRF-Token`` on state-changing requests.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

import msgspec

from vk_hive.auth import repository as repo
from vk_hive.auth.crypto import constant_time_equal, sha256_hex
from vk_hive.auth.sessions import inactive

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "LOGIN_LINK_TTL_S",
    "BrowserSession",
    "IssuedLoginLink",
    "csrf_matches",
    "delete_old_login_links",
    "end_browser_session",
    "find_browser_session",
    "issue_login_link",
    "redeem_login_link",
    "start_browser_session",
]

COOKIE_NAME = "vk_hive_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_LINK_TTL_S = 15 * 60.0
_MAX_SECRET_LEN = 256


class IssuedLoginLink(msgspec.Struct, frozen=True):
    token: str
    expires_at: datetime


class BrowserSession(msgspec.Struct, frozen=True):
    session_id: uuid.UUID
    user: repo.User
    csrf_token: str


async def issue_login_link(
    conn: repo.Conn, user_id: uuid.UUID, ttl_s: float = LOGIN_LINK_TTL_S
) -> IssuedLoginLink:
    """A new link for the user; the raw token is returned here and never again."""
    token = secrets.token_urlsafe(32)
    expires_at = await conn.fetchval(
        """INSERT INTO login_links (user_id, token_hash, expires_at)
           VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at""",
        user_id,
        sha256_hex(token),
        ttl_s,
    )
    return IssuedLoginLink(token=token, expires_at=expires_at)


async def redeem_login_link(conn: repo.Conn, token: str) -> uuid.UUID | None:
    """The user of a valid, unused, unexpired link, which is now used; else ``None`` (unknown,
    used and expired links are not told apart)."""
    if not token or len(token) > _MAX_SECRET_LEN:
        return None
    user_id: uuid.UUID | None = await conn.fetchval(
        """UPDATE login_links SET used_at = now()
           WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
           RETURNING user_id""",
        sha256_hex(token),
    )
    return user_id


async def delete_old_login_links(conn: repo.Conn, older_than_s: float) -> int:
    """Drop links that expired more than ``older_than_s`` ago (used or not)."""
    status = await conn.execute(
        "DELETE FROM login_links WHERE expires_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(status.split()[-1])


async def start_browser_session(conn: repo.Conn, user_id: uuid.UUID) -> str:
    """A new browser session for the user; returns the cookie value (stored only as a hash)."""
    cookie = secrets.token_urlsafe(32)
    await conn.execute(
        """INSERT INTO auth_sessions (user_id, session_secret_hash, csrf_token)
           VALUES ($1, $2, $3)""",
        user_id,
        sha256_hex(cookie),
        secrets.token_urlsafe(32),
    )
    return cookie


async def find_browser_session(
    conn: repo.Conn, cookie: str, *, inactivity_s: float
) -> BrowserSession | None:
    """The live session of a cookie value (an inactive one is revoked), or ``None``."""
    if not cookie or len(cookie) > _MAX_SECRET_LEN:
        return None
    row = await conn.fetchrow(
        "SELECT id, csrf_token FROM auth_sessions "
        "WHERE session_secret_hash = $1 AND revoked_at IS NULL AND csrf_token IS NOT NULL",
        sha256_hex(cookie),
    )
    if row is None:
        return None
    session = await repo.get_session(conn, row["id"])
    if session is None:
        return None
    if inactive(session, inactivity_s):
        await repo.revoke_session(conn, session.id)
        return None
    user = await repo.get_user(conn, session.user_id)
    if user is None:
        return None
    await repo.touch_session(conn, session.id)
    return BrowserSession(session_id=session.id, user=user, csrf_token=row["csrf_token"])


def csrf_matches(session_token: str, presented: str | None) -> bool:
    """Whether the client sent back the session's CSRF secret (constant-time)."""
    return bool(presented) and constant_time_equal(session_token, presented or "")


async def end_browser_session(conn: repo.Conn, session_id: uuid.UUID) -> None:
    """Sign out: the session is deleted (its cookie no longer matches anything)."""
    await conn.execute("DELETE FROM auth_sessions WHERE id = $1", session_id)
