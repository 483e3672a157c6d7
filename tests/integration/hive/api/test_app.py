"""Application-wide behaviour: unknown routes, maintenance jobs in the lifespan."""

from __future__ import annotations

import pytest

from vk_hive.jobs.maintenance import run_maintenance

from .conftest import Hive


@pytest.mark.asyncio
async def test_unknown_route_and_method_use_the_error_shape(hive: Hive) -> None:
    """404 for an unknown path and 405 for a wrong method are problem details with a code."""
    for method, path, status, code, title in (
        ("GET", "/v1/nope", 404, "not_found", "Not found"),
        ("DELETE", "/v1/health", 405, "method_not_allowed", "Method not allowed"),
    ):
        r = await hive.client.request(method, path)
        assert r.status_code == status
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {
            "type": f"urn:vk-swarm:problem:{code}",
            "title": title,
            "status": status,
            "detail": r.json()["detail"],
            "code": code,
        }


@pytest.mark.asyncio
async def test_maintenance_expires_invitations_and_handoffs(hive: Hive) -> None:
    """The maintenance job marks overdue invitations and handoffs expired and keeps activity
    partitions for today and the next two days."""
    alice = await hive.user()
    org = await hive.org_with(alice)
    await hive.client.post(
        f"/v1/organizations/{org}/invitations",
        json={"email": "z@example.com"},
        headers=alice.headers,
    )
    async with hive.db.acquire() as conn:
        await conn.execute(
            "UPDATE organization_invitations SET expires_at = now() - interval '1 s'"
        )
        await conn.execute(
            "INSERT INTO oauth_handoffs (provider, state, return_to, app_challenge, expires_at) "
            "VALUES ('github', 's1', 'http://localhost/', $1, now() - interval '1 s')",
            "c" * 64,
        )
    await run_maintenance(hive.db)
    async with hive.db.acquire() as conn:
        assert await conn.fetchval("SELECT status::text FROM organization_invitations") == "expired"
        assert await conn.fetchval("SELECT status FROM oauth_handoffs") == "expired"
        parts = await conn.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'activity'::regclass"
        )
    assert parts >= 3
    assert [j.name for j in hive.ctx.jobs.jobs] == ["maintenance", "event_loop_lag"]
