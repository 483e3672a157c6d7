"""Health, identity and personal access tokens over real HTTP."""

from __future__ import annotations

import pytest

from .conftest import Hive


@pytest.mark.asyncio
async def test_health_reports_database_and_version_without_auth(hive: Hive) -> None:
    """GET /v1/health needs no token and says the database answers."""
    r = await hive.client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["version"]
    assert r.headers["x-request-id"]


@pytest.mark.asyncio
async def test_me_lists_personal_org_with_admin_role(hive: Hive) -> None:
    """GET /v1/me returns the caller and their personal organization where they are admin."""
    alice = await hive.user()
    r = await hive.client.get("/v1/me", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["id"] == str(alice.user_id)
    [org] = body["organizations"]
    assert org["id"] == str(alice.personal_org_id)
    assert org["slug"] == f"personal-{alice.user_id}"
    assert org["user_role"] == "admin"
    assert org["is_personal"] is True


@pytest.mark.asyncio
async def test_missing_or_bad_token_is_401_json(hive: Hive) -> None:
    """No token, a malformed header or a wrong token all give a 401 JSON error."""
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer vk_pat_" + "a" * 40},
    ):
        r = await hive.client.get("/v1/me", headers=headers)
        assert r.status_code == 401, headers
        assert set(r.json()) == {"type", "title", "status", "detail", "code"}
        assert r.json()["status"] == 401
        assert r.json()["code"] in ("unauthorized", "invalid_token")


@pytest.mark.asyncio
async def test_personal_access_token_create_use_list_revoke(hive: Hive) -> None:
    """A PAT is shown once, works as a Bearer token, is listed without its secret, and stops
    working when revoked."""
    alice = await hive.user()
    r = await hive.client.post("/v1/tokens/personal", json={"name": "ci"}, headers=alice.headers)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token.startswith("vk_pat_")
    mine = {"Authorization": f"Bearer {token}"}
    assert (await hive.client.get("/v1/identity", headers=mine)).json()["auth_method"] == "pat"
    listed = (await hive.client.get("/v1/tokens/personal", headers=alice.headers)).json()
    assert all("token" not in p and "token_hash" not in p for p in listed)
    assert token not in str(listed)
    async with hive.db.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT token_hash FROM personal_access_tokens WHERE id = $1::uuid", r.json()["id"]
        )
    assert stored != token
    assert len(stored) == 64
    r = await hive.client.delete(f"/v1/tokens/personal/{r.json()['id']}", headers=alice.headers)
    assert r.status_code == 204
    assert (await hive.client.get("/v1/me", headers=mine)).status_code == 401


@pytest.mark.asyncio
async def test_openapi_schema_is_served(hive: Hive) -> None:
    """The OpenAPI document is served at /schema/openapi.json and lists the v1 routes."""
    r = await hive.client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/v1/me" in r.json()["paths"]
