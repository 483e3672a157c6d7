"""Invitation tokens are stored as hashes only: shown once at creation, never listed, accepted by
the plain token; migration 0005 converts invitations stored the old way."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from vk_hive.auth.crypto import sha256_hex
from vk_hive.store.migrate import load_migrations, migrate

from .conftest import Hive, running_hive

pytestmark = pytest.mark.asyncio


async def test_the_token_is_shown_once_and_only_its_hash_is_stored(hive: Hive) -> None:
    """The create response carries the token; the admin listing, the public look-up and the
    database row do not, and the row holds the token's SHA-256."""
    alice = await hive.user()
    org = await hive.org_with(alice)
    r = await hive.client.post(
        f"/v1/organizations/{org}/invitations",
        json={"email": "bob@example.com"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    uuid.UUID(token)  # a random UUID, as before
    listed = await hive.client.get(f"/v1/organizations/{org}/invitations", headers=alice.headers)
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["id"] == created["id"]
    assert "token" not in row
    assert token not in listed.text
    shown = await hive.client.get(f"/v1/invitations/{token}")
    assert shown.status_code == 200
    assert token not in shown.text
    async with hive.db.acquire() as conn:
        stored = dict(
            await conn.fetchrow(
                "SELECT * FROM organization_invitations WHERE id = $1", uuid.UUID(created["id"])
            )
        )
    assert stored["token_hash"] == sha256_hex(token)
    assert token not in {str(v) for v in stored.values()}


async def test_accept_works_with_the_plain_token_and_a_wrong_token_is_404(hive: Hive) -> None:
    """The invitee accepts with the token from the create response; the hash itself, or any
    other string, is not a token."""
    alice = await hive.user()
    org = await hive.org_with(alice)
    bob = await hive.user()
    r = await hive.client.post(
        f"/v1/organizations/{org}/invitations", json={"email": bob.email}, headers=alice.headers
    )
    token = r.json()["token"]
    for wrong in (sha256_hex(token), str(uuid.uuid4())):
        assert (await hive.client.get(f"/v1/invitations/{wrong}")).status_code == 404
        r = await hive.client.post(f"/v1/invitations/{wrong}/accept", headers=bob.headers)
        assert r.status_code == 404
    r = await hive.client.post(f"/v1/invitations/{token}/accept", headers=bob.headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(org)


async def test_migration_0005_hashes_tokens_stored_in_plain_text(pg_database: str) -> None:
    """On a database as the hive left it before 0005 — an invitation with its token in plain
    text — 0005 replaces the token by its hash, and the invitee still accepts with the plain
    token."""
    before = max(m.version for m in load_migrations() if m.version < 5)
    await migrate(pg_database, through=before)
    token = str(uuid.uuid4())
    conn = await asyncpg.connect(pg_database)
    try:
        admin = await conn.fetchval(
            "INSERT INTO users (email, username) VALUES ('admin@example.com', 'admin') RETURNING id"
        )
        org = await conn.fetchval(
            "INSERT INTO organizations (name, slug) VALUES ('Acme', 'acme') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO organization_member_metadata (organization_id, user_id, role) "
            "VALUES ($1, $2, 'admin')",
            org,
            admin,
        )
        await conn.execute(
            "INSERT INTO organization_invitations (organization_id, invited_by_user_id, email, "
            "role, token) VALUES ($1, $2, 'bob@example.com', 'member', $3)",
            org,
            admin,
            token,
        )
        applied = await migrate(conn)
        assert "0005_invitation_token_hash" in applied
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'organization_invitations'"
            )
        }
        assert "token" not in columns
        assert await conn.fetchval("SELECT token_hash FROM organization_invitations") == (
            sha256_hex(token)
        )
    finally:
        await conn.close()
    async with running_hive(pg_database) as hive:
        bob = await hive.user("bob@example.com")
        shown = await hive.client.get(f"/v1/invitations/{token}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["organization_name"] == "Acme"
        r = await hive.client.post(f"/v1/invitations/{token}/accept", headers=bob.headers)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == str(org)
