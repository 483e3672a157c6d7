"""OAuth sign-in through the handoff, against a fake local provider (the real one is out of
reach from tests)."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .conftest import Hive, HiveFactory
from .fake_oauth import FakeProvider, running_fake_provider

RETURN_TO = "http://localhost:5173/auth/done?keep=1"


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def _follow_to_app(hive: Hive, provider: str = "github") -> tuple[dict[str, str], str]:
    verifier = secrets.token_urlsafe(32)
    challenge = hashlib.sha256(verifier.encode()).hexdigest()
    r = await hive.client.post(
        "/v1/oauth/web/init",
        json={"provider": provider, "return_to": RETURN_TO, "app_challenge": challenge},
    )
    assert r.status_code == 200, r.text
    url = r.json()["authorize_url"]
    async with httpx.AsyncClient(timeout=10) as browser:
        for _ in range(5):  # hive start -> provider authorize -> hive callback -> app
            if url.startswith("http://localhost:5173"):
                break
            resp = await browser.get(url)
            assert resp.status_code == 302, resp.text
            url = resp.headers["location"]
    assert url.startswith("http://localhost:5173/auth/done")
    return _query(url), verifier


@pytest.mark.asyncio
async def test_github_sign_in_redeems_tokens_once(hive_factory: HiveFactory) -> None:
    """The full handoff signs a new user in: wrong verifier is refused, the right one yields
    tokens that work, a personal org exists, and a second redeem is refused."""
    async with running_fake_provider() as fake:
        hive = await hive_factory(github=fake.settings())
        back, verifier = await _follow_to_app(hive)
        assert back["keep"] == "1"
        assert "error" not in back
        body = {"handoff_id": back["handoff_id"], "app_code": back["app_code"]}
        r = await hive.client.post("/v1/oauth/web/redeem", json={**body, "app_verifier": "wrong"})
        assert r.status_code == 401
        r = await hive.client.post("/v1/oauth/web/redeem", json={**body, "app_verifier": verifier})
        assert r.status_code == 200, r.text
        tokens = r.json()
        me = await hive.client.get(
            "/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200
        data = me.json()
        assert data["user"]["email"] == "octo@example.com"
        assert data["user"]["username"] == "octo"
        [org] = data["organizations"]
        assert org["slug"] == f"personal-{data['user']['id']}"
        assert org["user_role"] == "admin"
        again = await hive.client.post(
            "/v1/oauth/web/redeem", json={**body, "app_verifier": verifier}
        )
        assert again.status_code == 409
        r = await hive.client.post(
            "/v1/tokens/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert r.status_code == 200

        # Signing in again finds the same user (by provider account), no second personal org.
        back2, verifier2 = await _follow_to_app(hive)
        r = await hive.client.post(
            "/v1/oauth/web/redeem",
            json={
                "handoff_id": back2["handoff_id"],
                "app_code": back2["app_code"],
                "app_verifier": verifier2,
            },
        )
        me2 = await hive.client.get(
            "/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me2.json()["user"]["id"] == data["user"]["id"]
        assert len(me2.json()["organizations"]) == 1


@pytest.mark.asyncio
async def test_provider_denial_redirects_with_error(hive_factory: HiveFactory) -> None:
    """When the user denies access at the provider the app gets ``error`` and no app_code, and
    the handoff cannot be redeemed."""
    async with running_fake_provider() as fake:
        fake.deny = True
        hive = await hive_factory(github=fake.settings())
        back, verifier = await _follow_to_app(hive)
        assert back["error"] == "access_denied"
        assert "app_code" not in back
        r = await hive.client.post(
            "/v1/oauth/web/redeem",
            json={"handoff_id": back["handoff_id"], "app_code": "x", "app_verifier": verifier},
        )
        assert r.status_code == 409


@pytest.mark.asyncio
async def test_init_validates_provider_challenge_and_return_to(hive_factory: HiveFactory) -> None:
    """Unconfigured providers, malformed challenges and non-http return URLs are 4xx."""
    fake = FakeProvider(url="http://127.0.0.1:9")
    hive = await hive_factory(github=fake.settings())
    good = {"provider": "github", "return_to": RETURN_TO, "app_challenge": "a" * 64}
    cases = [
        {**good, "provider": "google"},
        {**good, "provider": "gitlab"},
        {**good, "app_challenge": "A" * 64},
        {**good, "app_challenge": "abc"},
        {**good, "return_to": "javascript:alert(1)"},
        {**good, "return_to": "/relative"},
    ]
    for body in cases:
        r = await hive.client.post("/v1/oauth/web/init", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
    r = await hive.client.post("/v1/oauth/web/init", json=good)
    assert r.status_code == 200


@pytest.mark.asyncio
async def test_expired_handoff_cannot_start(hive_factory: HiveFactory) -> None:
    """A handoff past its TTL is marked expired and its start URL is refused."""
    fake = FakeProvider(url="http://127.0.0.1:9")
    hive = await hive_factory(github=fake.settings(), handoff_ttl_s=0.001)
    r = await hive.client.post(
        "/v1/oauth/web/init",
        json={"provider": "github", "return_to": RETURN_TO, "app_challenge": "b" * 64},
    )
    url = r.json()["authorize_url"]
    r = await hive.client.get(url.removeprefix(hive.url))
    assert r.status_code == 400
    assert "expired" in r.json()["detail"]
    async with hive.db.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM oauth_handoffs")
    assert status == "expired"
