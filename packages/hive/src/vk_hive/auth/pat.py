"""Personal access tokens: ``vk_pat_<random>``, stored as a SHA-256 hash with a prefix index."""

from __future__ import annotations

import secrets
import uuid

import msgspec

from vk_hive.auth import repository as repo
from vk_hive.auth.crypto import constant_time_equal, sha256_hex
from vk_hive.errors import Unauthorized

__all__ = ["PAT_PREFIX", "IssuedPat", "issue_pat", "looks_like_pat", "verify_pat"]

PAT_PREFIX = "vk_pat_"
_LOOKUP_LEN = len(PAT_PREFIX) + 8


class IssuedPat(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    token_prefix: str
    token: str


def looks_like_pat(raw: str) -> bool:
    return raw.startswith(PAT_PREFIX)


async def issue_pat(conn: repo.Conn, user_id: uuid.UUID, name: str) -> IssuedPat:
    """Create a token for the user; the raw token is returned here and never again."""
    raw = PAT_PREFIX + secrets.token_urlsafe(32)
    pat = await repo.create_pat(
        conn,
        user_id=user_id,
        name=name,
        token_prefix=raw[:_LOOKUP_LEN],
        token_hash=sha256_hex(raw),
    )
    return IssuedPat(id=pat.id, name=pat.name, token_prefix=pat.token_prefix, token=raw)


async def verify_pat(conn: repo.Conn, raw: str) -> repo.PersonalAccessToken:
    """The live token record matching ``raw`` (prefix lookup, constant-time hash compare)."""
    if not looks_like_pat(raw) or len(raw) < _LOOKUP_LEN + 8:
        raise Unauthorized("invalid_token: not a valid access token")
    digest = sha256_hex(raw)
    match: repo.PersonalAccessToken | None = None
    for candidate in await repo.find_pats_by_prefix(conn, raw[:_LOOKUP_LEN]):
        if constant_time_equal(candidate.token_hash, digest):
            match = candidate
    if match is None:
        raise Unauthorized("invalid_token: not a valid access token")
    await repo.touch_pat(conn, match.id)
    return match
