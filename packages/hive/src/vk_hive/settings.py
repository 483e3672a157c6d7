"""Hive settings: one frozen Struct built once from defaults < TOML file < environment < CLI flags.

Nothing here reads the environment at import time; :func:`load_settings` is called by ``main()``
(or by a test) and the result is passed down to :func:`vk_hive.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

__all__ = ["ENV_PREFIX", "HiveSettings", "OAuthProviderSettings", "SettingsError", "load_settings"]

ENV_PREFIX = "VK_HIVE_"

LogFormat = Literal["json", "console"]
RateUnit = Literal["second", "minute", "hour"]


class SettingsError(ValueError):
    """Settings that cannot be used (unknown key, wrong type, missing secret)."""


class OAuthProviderSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One OAuth2 provider. It is configured when ``client_id`` and ``client_secret`` are set."""

    authorize_url: str
    token_url: str
    user_url: str
    emails_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


def _github() -> OAuthProviderSettings:
    return OAuthProviderSettings(
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",  # noqa: S106 - an URL, not a secret
        user_url="https://api.github.com/user",
        emails_url="https://api.github.com/user/emails",
        scope="read:user user:email",
    )


def _google() -> OAuthProviderSettings:
    return OAuthProviderSettings(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - an URL, not a secret
        user_url="https://openidconnect.googleapis.com/v1/userinfo",
        scope="openid email profile",
    )


class HiveSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the hive process is configured with."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/vk_hive"
    host: str = "127.0.0.1"
    port: int = 9000
    public_base_url: str = ""
    jwt_secret: str = ""
    access_token_ttl_s: float = 120.0
    refresh_token_ttl_s: float = 365 * 24 * 3600.0
    session_inactivity_s: float = 365 * 24 * 3600.0
    token_leeway_s: float = 60.0
    handoff_ttl_s: float = 600.0
    invitation_ttl_s: float = 7 * 24 * 3600.0
    lease_ttl_s: float = 60.0
    lease_grace_s: float = 10.0
    heartbeat_timeout_s: float = 90.0
    # Node gateway (``/v1/nodes/ws``); every duration is injectable so tests run fast.
    heartbeat_interval_s: float = 30.0
    auth_timeout_s: float = 10.0
    lease_sweep_interval_s: float = 5.0
    outgoing_queue_size: int = 1024
    malformed_frame_limit: int = 3
    takeover_window_s: float = 300.0
    takeover_limit: int = 3
    activity_page_size: int = 200
    activity_reconnect_initial_s: float = 1.0
    activity_reconnect_max_s: float = 30.0
    activity_listen_check_s: float = 5.0
    clock_skew_s: float = 0.0
    log_format: LogFormat = "json"
    log_level: str = "info"
    max_body_bytes: int = 1024 * 1024
    db_pool_min: int = 1
    db_pool_max: int = 10
    maintenance_interval_s: float = 3600.0
    # Abuse limits, per client address (vk_hive.limits); a limit of 0 disables it.
    # Requests to the auth endpoints (token refresh, OAuth, invitations) per unit:
    auth_rate_limit: int = 60
    auth_rate_limit_unit: RateUnit = "minute"
    # Node WebSocket connections (each one ``auth`` attempt) per window, and how many may wait
    # for their ``auth`` at once (more are refused before any frame is read):
    node_auth_rate_limit: int = 60
    node_auth_rate_window_s: float = 60.0
    node_auth_max_pending: int = 64
    # HTTP server of ``vk-hive serve`` (vk_hive.server): request headers complete within
    # header_timeout_s of connect or of the last response; a request body idle for body_timeout_s
    # closes the connection; X-Forwarded-* headers are trusted from forwarded_allow_ips only.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    forwarded_allow_ips: str = "127.0.0.1"
    github: OAuthProviderSettings = msgspec.field(default_factory=_github)
    google: OAuthProviderSettings = msgspec.field(default_factory=_google)

    def __post_init__(self) -> None:
        if self.log_format not in ("json", "console"):
            raise SettingsError(f"log_format must be json or console, not {self.log_format!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port out of range: {self.port}")
        if self.access_token_ttl_s <= 0 or self.refresh_token_ttl_s <= 0:
            raise SettingsError("token TTLs must be positive")
        positive = {
            "lease_ttl_s": self.lease_ttl_s,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "heartbeat_timeout_s": self.heartbeat_timeout_s,
            "auth_timeout_s": self.auth_timeout_s,
            "lease_sweep_interval_s": self.lease_sweep_interval_s,
            "outgoing_queue_size": self.outgoing_queue_size,
            "malformed_frame_limit": self.malformed_frame_limit,
            "activity_page_size": self.activity_page_size,
        }
        for name, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{name} must be positive")
        if self.lease_grace_s < 0:
            raise SettingsError("lease_grace_s must not be negative")
        limits = {
            "auth_rate_limit": self.auth_rate_limit,
            "node_auth_rate_limit": self.node_auth_rate_limit,
            "node_auth_max_pending": self.node_auth_max_pending,
        }
        for name, value in limits.items():
            if value < 0:
                raise SettingsError(f"{name} must not be negative (0 disables it)")
        if self.auth_rate_limit_unit not in ("second", "minute", "hour"):
            raise SettingsError("auth_rate_limit_unit must be second, minute or hour")
        durations = {
            "node_auth_rate_window_s": self.node_auth_rate_window_s,
            "header_timeout_s": self.header_timeout_s,
            "body_timeout_s": self.body_timeout_s,
        }
        for name, value in durations.items():
            if value <= 0:
                raise SettingsError(f"{name} must be positive")

    def wall_now(self) -> dt.datetime:
        """The hive's Python-side wall clock (UTC) shifted by ``clock_skew_s``. Informative only:
        leases and every other deadline use the database clock."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_skew_s)

    @property
    def base_url(self) -> str:
        """Where users reach this hive (for OAuth redirects); defaults to ``http://host:port``."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def provider(self, name: str) -> OAuthProviderSettings | None:
        """The settings of a configured provider, or ``None``."""
        found: OAuthProviderSettings | None = {"github": self.github, "google": self.google}.get(
            name
        )
        return found if found is not None and found.configured else None


# env suffix -> (section, key); section "" is top level
_ENV_KEYS: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("", "database_url"),
    "HOST": ("", "host"),
    "PORT": ("", "port"),
    "PUBLIC_BASE_URL": ("", "public_base_url"),
    "JWT_SECRET": ("", "jwt_secret"),
    "ACCESS_TOKEN_TTL_S": ("", "access_token_ttl_s"),
    "REFRESH_TOKEN_TTL_S": ("", "refresh_token_ttl_s"),
    "HANDOFF_TTL_S": ("", "handoff_ttl_s"),
    "INVITATION_TTL_S": ("", "invitation_ttl_s"),
    "LEASE_TTL_S": ("", "lease_ttl_s"),
    "LEASE_GRACE_S": ("", "lease_grace_s"),
    "HEARTBEAT_TIMEOUT_S": ("", "heartbeat_timeout_s"),
    "HEARTBEAT_INTERVAL_S": ("", "heartbeat_interval_s"),
    "AUTH_TIMEOUT_S": ("", "auth_timeout_s"),
    "LEASE_SWEEP_INTERVAL_S": ("", "lease_sweep_interval_s"),
    "OUTGOING_QUEUE_SIZE": ("", "outgoing_queue_size"),
    "MALFORMED_FRAME_LIMIT": ("", "malformed_frame_limit"),
    "TAKEOVER_WINDOW_S": ("", "takeover_window_s"),
    "TAKEOVER_LIMIT": ("", "takeover_limit"),
    "ACTIVITY_PAGE_SIZE": ("", "activity_page_size"),
    "ACTIVITY_RECONNECT_INITIAL_S": ("", "activity_reconnect_initial_s"),
    "ACTIVITY_RECONNECT_MAX_S": ("", "activity_reconnect_max_s"),
    "CLOCK_SKEW_S": ("", "clock_skew_s"),
    "LOG_FORMAT": ("", "log_format"),
    "LOG_LEVEL": ("", "log_level"),
    "MAX_BODY_BYTES": ("", "max_body_bytes"),
    "MAINTENANCE_INTERVAL_S": ("", "maintenance_interval_s"),
    "AUTH_RATE_LIMIT": ("", "auth_rate_limit"),
    "AUTH_RATE_LIMIT_UNIT": ("", "auth_rate_limit_unit"),
    "NODE_AUTH_RATE_LIMIT": ("", "node_auth_rate_limit"),
    "NODE_AUTH_RATE_WINDOW_S": ("", "node_auth_rate_window_s"),
    "NODE_AUTH_MAX_PENDING": ("", "node_auth_max_pending"),
    "HEADER_TIMEOUT_S": ("", "header_timeout_s"),
    "BODY_TIMEOUT_S": ("", "body_timeout_s"),
    "FORWARDED_ALLOW_IPS": ("", "forwarded_allow_ips"),
}
for _provider in ("github", "google"):
    for _field in ("authorize_url", "token_url", "user_url", "emails_url", "client_id"):
        _ENV_KEYS[f"{_provider.upper()}_{_field.upper()}"] = (_provider, _field)
    _ENV_KEYS[f"{_provider.upper()}_CLIENT_SECRET"] = (_provider, "client_secret")


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for suffix, (section, key) in _ENV_KEYS.items():
        value = env.get(ENV_PREFIX + suffix)
        if value is None:
            continue
        if section:
            raw.setdefault(section, {})[key] = value
        else:
            raw[key] = value
    return raw


def load_settings(
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HiveSettings:
    """Build settings: defaults < TOML ``config_file`` < ``env`` (default: ``os.environ``) <
    ``overrides`` (CLI flags; ``None`` values are ignored). Environment strings are converted to
    the field types.
    """
    defaults = msgspec.to_builtins(HiveSettings())
    layers: list[Mapping[str, Any]] = []
    if config_file is not None:
        try:
            with Path(config_file).open("rb") as fh:
                layers.append(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from None
    layers.append(_from_env(os.environ if env is None else env))
    if overrides:
        layers.append({k: v for k, v in overrides.items() if v is not None})
    merged: dict[str, Any] = defaults
    for layer in layers:
        merged = _merge(merged, layer)
    try:
        return msgspec.convert(merged, HiveSettings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None
    except SettingsError:
        raise
