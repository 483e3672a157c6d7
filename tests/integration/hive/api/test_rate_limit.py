"""Rate limit of the auth endpoints per client address, over real HTTP to a real hive."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from vk_hive.settings import HiveSettings

from .conftest import Hive, HiveFactory

pytestmark = pytest.mark.asyncio

REFRESH = ("POST", "/v1/tokens/refresh", {"refresh_token": "not-a-token"})


async def _refresh(client: httpx.AsyncClient) -> httpx.Response:
    method, path, body = REFRESH
    return await client.request(method, path, json=body)


def _auth_requests() -> list[tuple[str, str, dict[str, str] | None]]:
    """One request to each limited endpoint (their answers do not matter: every request counts)."""
    handoff = uuid.uuid4()
    token = uuid.uuid4().hex
    return [
        ("POST", "/v1/tokens/refresh", {"refresh_token": "not-a-token"}),
        (
            "POST",
            "/v1/oauth/web/init",
            {"provider": "github", "return_to": "http://localhost/x", "app_challenge": "a" * 64},
        ),
        ("GET", f"/v1/oauth/github/start?handoff_id={handoff}", None),
        ("GET", "/v1/oauth/github/callback?state=abc&code=def", None),
        (
            "POST",
            "/v1/oauth/web/redeem",
            {"handoff_id": str(handoff), "app_code": "x", "app_verifier": "y"},
        ),
        ("GET", f"/v1/invitations/{token}", None),
        ("POST", f"/v1/invitations/{token}/accept", None),
        ("GET", f"/login/{token}", None),
    ]


async def test_a_burst_on_the_auth_endpoints_gets_429_with_retry_after_and_a_json_error(
    hive_factory: HiveFactory,
) -> None:
    """More requests than the limit from one address within the window: the surplus gets 429
    with Retry-After (whole seconds), the RateLimit-* headers and the usual JSON error body."""
    hive = await hive_factory(auth_rate_limit=5, auth_rate_limit_unit="minute")
    # 2 * limit + 1 requests: at least one is refused even when the burst straddles a window.
    answers = [await _refresh(hive.client) for _ in range(11)]
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[:5] == [401] * 5
    refused = [r for r in answers if r.status_code == 429]
    assert refused
    for r in refused:
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["ratelimit-limit"] == "5"
        assert r.headers["ratelimit-remaining"] == "0"
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert (body["status"], body["code"]) == (429, "rate_limited")
        assert "retry after" in body["detail"]


async def test_every_auth_endpoint_counts_against_one_budget_per_address(
    hive_factory: HiveFactory,
) -> None:
    """Refresh, the OAuth handoff (init, start, callback, redeem), invitations (look-up, accept)
    and browser login links share the budget: once it is spent, each of them answers 429."""
    hive = await hive_factory(auth_rate_limit=8, auth_rate_limit_unit="hour")
    requests = _auth_requests()
    assert len(requests) == 8
    for method, path, body in requests:
        r = await hive.client.request(method, path, json=body)
        assert r.status_code != 429, (method, path)
    for method, path, body in _auth_requests():
        r = await hive.client.request(method, path, json=body)
        assert r.status_code == 429, (method, path, r.text)
        assert int(r.headers["retry-after"]) >= 1


async def test_other_routes_are_not_limited_even_when_the_auth_budget_is_spent(
    hive_factory: HiveFactory,
) -> None:
    """With the auth budget spent, a burst on other routes (health, me, a PAT listing, the
    organizations) never gets a 429."""
    hive = await hive_factory(auth_rate_limit=2, auth_rate_limit_unit="hour")
    alice = await hive.user()
    while (await _refresh(hive.client)).status_code != 429:
        pass
    for _ in range(15):
        for path in ("/v1/health", "/v1/me", "/v1/tokens/personal", "/v1/organizations"):
            r = await hive.client.get(path, headers=alice.headers)
            assert r.status_code == 200, (path, r.text)


async def test_clients_are_counted_per_address(hive_factory: HiveFactory) -> None:
    """A client that spent its budget does not spend another address's: a client connecting
    from 127.0.0.2 is still served."""
    hive = await hive_factory(auth_rate_limit=3, auth_rate_limit_unit="hour")
    while (await _refresh(hive.client)).status_code != 429:
        pass
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=hive.url, transport=transport, timeout=10) as other:
        assert (await _refresh(other)).status_code == 401
    assert (await _refresh(hive.client)).status_code == 429


async def test_the_budget_comes_back_after_retry_after(hive_factory: HiveFactory) -> None:
    """A refused client that waits the Retry-After it was given is served again."""
    hive = await hive_factory(auth_rate_limit=2, auth_rate_limit_unit="second")
    while (refused := await _refresh(hive.client)).status_code != 429:
        pass
    await asyncio.sleep(int(refused.headers["retry-after"]) + 0.05)
    assert (await _refresh(hive.client)).status_code == 401


async def test_with_the_default_limit_a_normal_client_never_sees_429(
    hive_factory: HiveFactory,
) -> None:
    """Default settings: a user who signs in (the whole OAuth handoff), refreshes a few times
    and opens two invitations in the same minute is never refused."""
    defaults = HiveSettings()
    hive: Hive = await hive_factory(
        auth_rate_limit=defaults.auth_rate_limit, auth_rate_limit_unit=defaults.auth_rate_limit_unit
    )
    for _ in range(3):
        for method, path, body in _auth_requests():
            r = await hive.client.request(method, path, json=body)
            assert r.status_code != 429, (method, path)
