"""Sessions, refresh rotation with reuse detection, token expiry and node API keys."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from vk_hive.auth.api_keys import ApiKeyBlocked, verify_api_key
from vk_hive.errors import Forbidden, Unauthorized
from vk_hive.store.repositories import node_api_keys

from .conftest import Hive, HiveFactory


@pytest.mark.asyncio
async def test_refresh_rotates_and_reuse_revokes_every_session(hive: Hive) -> None:
    """A refresh token works once; presenting the rotated one again revokes all of the user's
    sessions, so even the newest tokens stop working."""
    alice = await hive.user(jwt=True)
    other_session = await hive.user(alice.email, jwt=True)
    r = await hive.client.post("/v1/tokens/refresh", json={"refresh_token": alice.refresh_token})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["refresh_token"] != alice.refresh_token
    me = await hive.client.get(
        "/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    )
    assert me.status_code == 200

    reuse = await hive.client.post(
        "/v1/tokens/refresh", json={"refresh_token": alice.refresh_token}
    )
    assert reuse.status_code == 401
    assert "token_reuse_detected" in reuse.json()["detail"]

    for token in (fresh["access_token"], other_session.token):
        r = await hive.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert "session_revoked" in r.json()["detail"]
    r = await hive.client.post("/v1/tokens/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 401
    async with hive.db.acquire() as conn:
        reasons = await conn.fetch(
            "SELECT revoked_reason FROM revoked_refresh_tokens WHERE user_id = $1", alice.user_id
        )
    assert {r["revoked_reason"] for r in reasons} == {"token_rotation", "reuse_of_revoked_token"}


@pytest.mark.asyncio
async def test_concurrent_refresh_lets_exactly_one_through(hive: Hive) -> None:
    """Two refreshes racing with the same token: at most one succeeds, the other is reuse."""
    alice = await hive.user(jwt=True)
    results = await asyncio.gather(
        *(
            hive.client.post("/v1/tokens/refresh", json={"refresh_token": alice.refresh_token})
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 401]


@pytest.mark.asyncio
async def test_logout_revokes_the_session(hive: Hive) -> None:
    """After POST /v1/oauth/logout the access and refresh tokens of that session are refused."""
    alice = await hive.user(jwt=True)
    r = await hive.client.post("/v1/oauth/logout", headers=alice.headers)
    assert r.status_code == 204
    assert (await hive.client.get("/v1/me", headers=alice.headers)).status_code == 401
    r = await hive.client.post("/v1/tokens/refresh", json={"refresh_token": alice.refresh_token})
    assert r.status_code == 401
    assert "session_revoked" in r.json()["detail"]


@pytest.mark.asyncio
async def test_access_tokens_expire_with_short_ttl(hive_factory: HiveFactory) -> None:
    """With a 2 s access TTL and no leeway, a token stops working within about two seconds and the
    refresh token still mints a new one. (JWT times are whole seconds: a 1 s token minted late
    in a second may already be expired at its first use.)"""
    hive = await hive_factory(access_token_ttl_s=2, token_leeway_s=0)
    alice = await hive.user(jwt=True)
    assert (await hive.client.get("/v1/me", headers=alice.headers)).status_code == 200
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        r = await hive.client.get("/v1/me", headers=alice.headers)
        if r.status_code == 401:
            assert "token_expired" in r.json()["detail"]
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("access token never expired")
    r = await hive.client.post("/v1/tokens/refresh", json={"refresh_token": alice.refresh_token})
    assert r.status_code == 200


@pytest.mark.asyncio
async def test_api_key_secret_shown_once_stored_hashed_never_logged(hive: Hive) -> None:
    """Creating a node API key returns the secret once; the database holds only its SHA-256, the
    list never shows it, and no log line carries it."""
    alice = await hive.user()
    org = str(alice.personal_org_id)
    with structlog.testing.capture_logs() as logs:
        r = await hive.client.post(
            "/v1/nodes/api-keys",
            json={"organization_id": org, "name": "laptop"},
            headers=alice.headers,
        )
        assert r.status_code == 201, r.text
        created = r.json()
        secret = created["secret"]
        listed = await hive.client.get(
            "/v1/nodes/api-keys", params={"organization_id": org}, headers=alice.headers
        )
        async with hive.db.acquire() as conn:
            await verify_api_key(conn, secret)
    assert set(created) >= {"id", "key_prefix", "secret"}
    assert created["key_prefix"] == secret[:8]
    assert secret not in listed.text
    assert listed.json()[0]["status"] == "unbound"
    assert "key_hash" not in listed.json()[0]
    assert secret not in str(logs)
    async with hive.db.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM node_api_keys WHERE id = $1::uuid", created["id"])
    assert secret not in str(dict(row))
    assert len(row["key_hash"]) == 64


@pytest.mark.asyncio
async def test_verify_api_key_refuses_wrong_revoked_and_blocked_keys(hive: Hive) -> None:
    """verify_api_key accepts the exact key only: a same-prefix forgery, a revoked key and a
    blocked key are refused (blocked with 403 semantics)."""
    alice = await hive.user()
    org = str(alice.personal_org_id)
    keys = []
    for name in ("a", "b"):
        r = await hive.client.post(
            "/v1/nodes/api-keys", json={"organization_id": org, "name": name}, headers=alice.headers
        )
        keys.append(r.json())
    good, other = keys
    async with hive.db.acquire() as conn:
        record = await verify_api_key(conn, good["secret"])
        assert str(record.id) == good["id"]
        assert record.last_used_at is None or record.last_used_at
        forged = good["secret"][:8] + "0" * 56
        for bad in (forged, "short", good["secret"] + "x", ""):
            with pytest.raises(Unauthorized):
                await verify_api_key(conn, bad)
        await node_api_keys.block_key(conn, record.id, "Duplicate key use detected")
        with pytest.raises(ApiKeyBlocked) as blocked:
            await verify_api_key(conn, good["secret"])
        assert isinstance(blocked.value, Forbidden)
    r = await hive.client.post(f"/v1/nodes/api-keys/{good['id']}/unblock", headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "unbound"
    r = await hive.client.delete(f"/v1/nodes/api-keys/{other['id']}", headers=alice.headers)
    assert r.status_code == 204
    async with hive.db.acquire() as conn:
        await verify_api_key(conn, good["secret"])
        with pytest.raises(Unauthorized, match="revoked"):
            await verify_api_key(conn, other["secret"])
    r = await hive.client.post(f"/v1/nodes/api-keys/{other['id']}/unblock", headers=alice.headers)
    assert r.status_code == 409
