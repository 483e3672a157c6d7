"""Node API keys (security.md §1): 64 hex chars, stored only as SHA-256 with an 8-char prefix.

:func:`verify_api_key` is what the node gateway (and any API-key REST route) calls to authenticate.
"""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import msgspec

from vk_hive.auth.crypto import constant_time_equal, sha256_hex
from vk_hive.errors import Forbidden, Unauthorized
from vk_hive.store.models import NodeApiKey
from vk_hive.store.repositories import node_api_keys

__all__ = [
    "ApiKeyBlocked",
    "CreatedApiKey",
    "create_api_key",
    "generate_api_key",
    "key_status",
    "verify_api_key",
]

PREFIX_LEN = 8


class ApiKeyBlocked(Forbidden):
    """A valid key that is blocked (duplicate use from several machines); ``reason`` says why."""


class CreatedApiKey(msgspec.Struct, frozen=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    key_prefix: str
    secret: str


def generate_api_key() -> str:
    """32 random bytes as lowercase hex (64 characters)."""
    return secrets.token_hex(32)


async def create_api_key(
    conn: asyncpg.Connection, org_id: uuid.UUID, name: str, *, created_by: uuid.UUID | None
) -> CreatedApiKey:
    """Store a new key's hash; the raw key is returned here (as ``secret``) and never again."""
    raw = generate_api_key()
    key = await node_api_keys.create(
        conn, org_id, name, created_by, key_hash=sha256_hex(raw), key_prefix=raw[:PREFIX_LEN]
    )
    return CreatedApiKey(
        id=key.id,
        organization_id=key.organization_id,
        name=key.name,
        key_prefix=key.key_prefix,
        secret=raw,
    )


def key_status(key: NodeApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.blocked_at is not None:
        return "blocked"
    if key.node_id is not None:
        return "bound"
    return "unbound"


async def verify_api_key(
    conn: asyncpg.Connection, raw: str, *, allow_blocked: bool = False
) -> NodeApiKey:
    """The key record for ``raw``: prefix lookup, then a constant-time compare of the full hash.

    Raises :class:`~vk_hive.errors.Unauthorized` for an unknown or revoked key and
    :class:`ApiKeyBlocked` (403) for a blocked one unless ``allow_blocked``. Touches
    ``last_used_at`` on success.
    """
    if not isinstance(raw, str) or len(raw) < PREFIX_LEN or len(raw) > 256 or "\x00" in raw:
        raise Unauthorized("invalid API key")
    digest = sha256_hex(raw)
    match: NodeApiKey | None = None
    for candidate in await node_api_keys.find_by_prefix(conn, raw[:PREFIX_LEN]):
        # Compare every candidate so timing does not reveal which one matched.
        if constant_time_equal(candidate.key_hash, digest):
            match = candidate
    if match is None:
        raise Unauthorized("invalid API key")
    if match.revoked_at is not None:
        raise Unauthorized("API key revoked")
    if match.blocked_at is not None and not allow_blocked:
        raise ApiKeyBlocked(f"API key blocked: {match.blocked_reason or 'blocked'}")
    await node_api_keys.touch(conn, match.id)
    return match
