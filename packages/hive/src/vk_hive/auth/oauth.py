"""OAuth sign-in through a PKCE-style handoff (security.md §2), for GitHub and Google.

``pending → authorized → redeemed``, with side exits ``error`` and ``expired``. The application
creates a handoff with ``app_challenge = sha256(verifier)``, sends the browser to ``authorize_url``,
receives ``handoff_id`` + ``app_code`` on its ``return_to`` URL and redeems them together with the
verifier for an access/refresh pair.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import msgspec
import structlog

from vk_hive.auth import repository as repo
from vk_hive.auth.crypto import constant_time_equal, random_alnum, sha256_hex
from vk_hive.auth.sessions import TokenPair, inactive, tokens_for_session
from vk_hive.auth.tokens import TokenSigner
from vk_hive.errors import Conflict, InvalidInput, NotFound, Unauthorized, Unavailable
from vk_hive.settings import HiveSettings, OAuthProviderSettings
from vk_hive.store.db import Database
from vk_hive.tenancy.repository import ensure_personal_organization

__all__ = [
    "HandoffCreated",
    "ProviderProfile",
    "callback",
    "init_handoff",
    "redeem",
    "start_url",
]

log = structlog.get_logger("vk_hive.oauth")

PROVIDERS = ("github", "google")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PROFILE_TRIES = 5
_PROFILE_DELAY_S = 0.5
_HTTP_TIMEOUT_S = 10.0


class HandoffCreated(msgspec.Struct, frozen=True):
    handoff_id: uuid.UUID
    authorize_url: str
    expires_at: datetime


class ProviderProfile(msgspec.Struct, frozen=True):
    provider_user_id: str
    email: str | None
    username: str | None
    display_name: str | None
    avatar_url: str | None


def _provider(settings: HiveSettings, name: str) -> OAuthProviderSettings:
    if name not in PROVIDERS:
        raise NotFound(f"unknown OAuth provider {name!r}")
    conf = settings.provider(name)
    if conf is None:
        raise NotFound(f"OAuth provider {name!r} is not configured")
    return conf


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _check_return_to(return_to: str, settings: HiveSettings) -> None:
    try:
        parts = urlsplit(return_to)
    except ValueError:
        raise InvalidInput("return_to is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("return_to must be an absolute http(s) URL")
    own_host = urlsplit(settings.base_url).hostname
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not local and parts.hostname != own_host:
        # Allowed: the app_challenge/verifier check protects the redeem step.
        log.info("oauth.return_to_foreign_host", host=parts.hostname)


def _callback_url(settings: HiveSettings, provider: str) -> str:
    return f"{settings.base_url}/v1/oauth/{provider}/callback"


async def init_handoff(
    db: Database, settings: HiveSettings, *, provider: str, return_to: str, app_challenge: str
) -> HandoffCreated:
    _provider(settings, provider)
    _check_return_to(return_to, settings)
    if not _HEX64.match(app_challenge):
        raise InvalidInput(
            "app_challenge must be 64 lowercase hex characters (SHA-256 of a verifier)"
        )
    async with db.transaction() as conn:
        handoff = await repo.create_handoff(
            conn,
            provider=provider,
            state=random_alnum(48),
            return_to=return_to,
            app_challenge=app_challenge,
            ttl_s=settings.handoff_ttl_s,
        )
    url = f"{settings.base_url}/v1/oauth/{provider}/start?handoff_id={handoff.id}"
    return HandoffCreated(handoff_id=handoff.id, authorize_url=url, expires_at=handoff.expires_at)


async def start_url(
    db: Database, settings: HiveSettings, *, provider: str, handoff_id: uuid.UUID
) -> str:
    """Where to send the browser: the provider's authorize page with this handoff's state."""
    conf = _provider(settings, provider)
    async with db.transaction() as conn:
        handoff = await repo.get_handoff(conn, handoff_id, for_update=True)
        if handoff is None or handoff.provider != provider:
            raise NotFound("handoff not found")
        if await repo.handoff_expired(conn, handoff.id):
            await repo.set_handoff_status(conn, handoff.id, "expired")
            expired = True
        else:
            expired = False
    if expired:
        raise InvalidInput("handoff expired")
    if handoff.status != "pending":
        raise Conflict(f"handoff is {handoff.status}, not pending")
    params = {
        "client_id": conf.client_id,
        "redirect_uri": _callback_url(settings, provider),
        "state": handoff.state,
        "response_type": "code",
    }
    if conf.scope:
        params["scope"] = " ".join(conf.scope)
    return _with_query(conf.authorize_url, params)


async def _exchange_code(
    client: httpx.AsyncClient, conf: OAuthProviderSettings, code: str, redirect_uri: str
) -> dict[str, Any]:
    response = await client.post(
        conf.token_url,
        data={
            "client_id": conf.client_id,
            "client_secret": conf.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
        },
        headers={"Accept": "application/json"},
    )
    if response.status_code != 200:
        raise InvalidInput("token_exchange_failed")
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise InvalidInput("token_exchange_failed")
    return body


async def _get_json(client: httpx.AsyncClient, url: str, access_token: str) -> Any:
    last: Exception | None = None
    for attempt in range(_PROFILE_TRIES):
        try:
            response = await client.get(
                url,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
            last = httpx.HTTPStatusError(
                "server error", request=response.request, response=response
            )
        except httpx.TransportError as exc:
            last = exc
        if attempt + 1 < _PROFILE_TRIES:
            await asyncio.sleep(_PROFILE_DELAY_S)
    raise Unavailable(f"provider unreachable: {type(last).__name__}")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def _profile(
    client: httpx.AsyncClient, provider: str, conf: OAuthProviderSettings, access_token: str
) -> ProviderProfile:
    data = await _get_json(client, conf.user_url, access_token)
    if not isinstance(data, dict):
        raise InvalidInput("profile_fetch_failed")
    if provider == "github":
        if data.get("id") is None:
            raise InvalidInput("profile_fetch_failed")
        email = _text(data.get("email"))
        if email is None and conf.emails_url:
            emails = await _get_json(client, conf.emails_url, access_token)
            if isinstance(emails, list):
                primary = [e for e in emails if isinstance(e, dict) and e.get("primary")]
                for entry in primary + [e for e in emails if isinstance(e, dict)]:
                    if entry.get("verified", True) and _text(entry.get("email")):
                        email = entry["email"]
                        break
        return ProviderProfile(
            provider_user_id=str(data["id"]),
            email=email,
            username=_text(data.get("login")),
            display_name=_text(data.get("name")),
            avatar_url=_text(data.get("avatar_url")),
        )
    if data.get("sub") is None:
        raise InvalidInput("profile_fetch_failed")
    return ProviderProfile(
        provider_user_id=str(data["sub"]),
        email=_text(data.get("email")),
        username=None,
        display_name=_text(data.get("name")),
        avatar_url=_text(data.get("picture")),
    )


def _fallback_email(provider: str, profile: ProviderProfile) -> str:
    if profile.email:
        return profile.email
    domain = "users.noreply.github.com" if provider == "github" else "users.noreply.google.com"
    return f"{profile.provider_user_id}@{domain}"


def _username(provider: str, profile: ProviderProfile, email: str) -> str:
    if profile.username:
        return profile.username
    local = email.partition("@")[0]
    return local or f"{provider}-{profile.provider_user_id}"


async def callback(
    db: Database,
    settings: HiveSettings,
    *,
    provider: str,
    state: str | None,
    code: str | None,
    error: str | None,
) -> str:
    """Finish the provider step and return where to redirect the browser (``return_to`` with
    ``handoff_id`` and ``app_code``, or ``error``)."""
    conf = _provider(settings, provider)
    if not state:
        raise InvalidInput("missing state")
    async with db.transaction() as conn:
        handoff = await repo.get_handoff_by_state(conn, state)
        if handoff is None or handoff.provider != provider:
            raise NotFound("handoff not found")
        expired = await repo.handoff_expired(conn, handoff.id)
        if expired:
            await repo.set_handoff_status(conn, handoff.id, "expired")
        elif handoff.status == "pending" and (error or not code):
            await repo.set_handoff_status(conn, handoff.id, "error", error or "missing_code")
    back = {"handoff_id": str(handoff.id)}
    if expired:
        return _with_query(handoff.return_to, {**back, "error": "handoff_expired"})
    if handoff.status != "pending":
        raise Conflict(f"handoff is {handoff.status}, not pending")
    if error or not code:
        return _with_query(handoff.return_to, {**back, "error": error or "missing_code"})

    try:
        async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_S) as client:
            tokens = await _exchange_code(client, conf, code, _callback_url(settings, provider))
            profile = await _profile(client, provider, conf, tokens["access_token"])
    except (InvalidInput, Unavailable, httpx.HTTPError) as exc:
        reason = exc.detail if isinstance(exc, InvalidInput) else "provider_unavailable"
        async with db.transaction() as conn:
            await repo.set_handoff_status(conn, handoff.id, "error", reason)
        log.warning("oauth.callback_failed", provider=provider, reason=reason)
        return _with_query(handoff.return_to, {**back, "error": reason})

    app_code = random_alnum(48)
    async with db.transaction() as conn:
        account = await repo.get_oauth_account(conn, provider, profile.provider_user_id)
        email = _fallback_email(provider, profile)
        if account is not None:
            user = await repo.get_user(conn, account.user_id)
            assert user is not None
        else:
            user = await repo.upsert_user(
                conn, email=email, username=_username(provider, profile, email)
            )
        await repo.upsert_oauth_account(
            conn,
            user_id=user.id,
            provider=provider,
            provider_user_id=profile.provider_user_id,
            email=profile.email,
            username=profile.username,
            display_name=profile.display_name,
            avatar_url=profile.avatar_url,
        )
        await ensure_personal_organization(conn, user.id, user.username or str(user.id))
        session = await repo.create_session(conn, user.id)
        await repo.mark_handoff_authorized(
            conn,
            handoff.id,
            user_id=user.id,
            session_id=session.id,
            app_code_hash=sha256_hex(app_code),
        )
    log.info("oauth.authorized", provider=provider, user_id=str(user.id))
    return _with_query(handoff.return_to, {**back, "app_code": app_code})


async def redeem(
    db: Database,
    settings: HiveSettings,
    signer: TokenSigner,
    *,
    handoff_id: uuid.UUID,
    app_code: str,
    app_verifier: str,
) -> TokenPair:
    failure: Exception | None = None
    pair: TokenPair | None = None
    async with db.transaction() as conn:
        handoff = await repo.get_handoff(conn, handoff_id, for_update=True)
        if handoff is None:
            raise NotFound("handoff not found")
        if handoff.status == "pending":
            raise InvalidInput("handoff not authorized")
        if handoff.status != "authorized":
            raise Conflict("handoff already redeemed or closed")
        if await repo.handoff_expired(conn, handoff.id):
            await repo.set_handoff_status(conn, handoff.id, "expired")
            failure = InvalidInput("handoff expired")
        elif not constant_time_equal(sha256_hex(app_code), handoff.app_code_hash or ""):
            raise Unauthorized("invalid app_code")
        elif not constant_time_equal(sha256_hex(app_verifier), handoff.app_challenge):
            raise Unauthorized("app_verifier does not match app_challenge")
        else:
            session = (
                await repo.get_session(conn, handoff.session_id, for_update=True)
                if handoff.session_id
                else None
            )
            user = await repo.get_user(conn, handoff.user_id) if handoff.user_id else None
            if session is None or user is None or session.revoked_at is not None:
                raise Unauthorized("session_revoked: the session of this handoff is gone")
            if inactive(session, settings.session_inactivity_s):
                raise Unauthorized("session_expired: the session expired")
            await ensure_personal_organization(conn, user.id, user.username or str(user.id))
            pair = await tokens_for_session(conn, signer, session)
            if not await repo.mark_handoff_redeemed(conn, handoff.id):
                raise Conflict("handoff already redeemed")
    if failure is not None:
        raise failure
    assert pair is not None
    return pair
