"""Hive settings: one frozen Struct built once from defaults < TOML file < environment < CLI flags.

Nothing here reads the environment at import time; :func:`load_settings` is called by ``main()``
(or by a test) and the result is passed down to :func:`vk_hive.app.create_app`. Every setting has
one variable, ``VK_HIVE_<NAME>`` (a provider's: ``VK_HIVE_GITHUB_CLIENT_ID``), and every value
remembers where it came from for ``vk-hive config show`` (:mod:`vk_shared.settings`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from vk_shared.settings import Loaded, SettingsError, SettingsSpec

__all__ = [
    "CONFIG_ENV",
    "ENV_NAMES",
    "ENV_PREFIX",
    "SPEC",
    "HiveSettings",
    "LoadedSettings",
    "OAuthProviderSettings",
    "SettingsError",
    "load_settings",
]

ENV_PREFIX = "VK_HIVE_"
CONFIG_ENV = "VK_HIVE_CONFIG"
"""Environment variable naming the optional TOML settings file."""
MIN_JWT_SECRET_BYTES = 32

LogFormat = Literal["json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
RateUnit = Literal["second", "minute", "hour"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
"""A positive duration."""
Count = Annotated[int, msgspec.Meta(gt=0)]
"""A positive number."""
Limit = Annotated[int, msgspec.Meta(ge=0)]
"""A limit; 0 disables it."""
ScopeToken = Annotated[str, msgspec.Meta(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]
"""One OAuth scope (RFC 6749 §3.3: visible ASCII but ``"`` and ``\\``)."""


class OAuthProviderSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One OAuth2 provider. It is configured when ``client_id`` and ``client_secret`` are set."""

    authorize_url: str
    token_url: str
    user_url: str
    emails_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    scope: tuple[ScopeToken, ...] = ()
    """What the hive asks the provider for (sent space separated; a comma list in the
    environment); empty: the provider's default."""

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


def _github() -> OAuthProviderSettings:
    return OAuthProviderSettings(
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",  # noqa: S106 - an URL, not a secret
        user_url="https://api.github.com/user",
        emails_url="https://api.github.com/user/emails",
        scope=("read:user", "user:email"),
    )


def _google() -> OAuthProviderSettings:
    return OAuthProviderSettings(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - an URL, not a secret
        user_url="https://openidconnect.googleapis.com/v1/userinfo",
        scope=("openid", "email", "profile"),
    )


class HiveSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the hive process is configured with."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/vk_hive"
    host: str = "127.0.0.1"
    port: Port = 9000
    public_base_url: str = ""
    jwt_secret: str = ""
    """Signs access and refresh tokens: empty (a random key per process) or at least 32 bytes."""
    access_token_ttl_s: Seconds = 120.0
    refresh_token_ttl_s: Seconds = 365 * 24 * 3600.0
    session_inactivity_s: Seconds = 365 * 24 * 3600.0
    token_leeway_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    handoff_ttl_s: Seconds = 600.0
    invitation_ttl_s: Seconds = 7 * 24 * 3600.0
    lease_ttl_s: Seconds = 60.0
    lease_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    heartbeat_timeout_s: Seconds = 90.0
    # Node gateway (``/v1/nodes/ws``); every duration is injectable so tests run fast.
    heartbeat_interval_s: Seconds = 30.0
    auth_timeout_s: Seconds = 10.0
    lease_sweep_interval_s: Seconds = 5.0
    # Several hive processes over one database: how often a process that does not lead tries to
    # become the leader (the one that runs the sweepers and maintenance), and how often the
    # leader marks offline the nodes whose heartbeat is older than ``heartbeat_timeout_s`` (a
    # hive process that died leaves its nodes "online" in the table until then).
    leader_check_s: Seconds = 2.0
    # A node that disconnects is announced offline (to other nodes and the boards) only after
    # this grace, and not at all if it reconnected meanwhile (the table marks it offline at once).
    status_offline_grace_s: Annotated[float, msgspec.Meta(ge=0, le=300)] = 2.0
    stale_node_sweep_s: Seconds = 15.0
    # ``vk-hive serve`` worker processes sharing the listening socket (1: serve in this process).
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    outgoing_queue_size: Count = 1024
    malformed_frame_limit: Count = 3
    takeover_window_s: Seconds = 300.0
    takeover_limit: Limit = 3
    activity_page_size: Count = 200
    activity_reconnect_initial_s: Seconds = 1.0
    activity_reconnect_max_s: Seconds = 30.0
    activity_listen_check_s: Seconds = 5.0
    # User activity stream (``/v1/ws``): frames queued per session (activity and log lines that
    # do not fit are re-read from the database at the client's pace), how long one frame may
    # wait for a client that does not read before the session is closed (1013), how many
    # execution processes one session may follow, and how often a session's access (membership,
    # credential) is checked again.
    user_ws_queue_size: Count = 256
    user_ws_send_timeout_s: Seconds = 30.0
    user_ws_max_follows: Count = 64
    user_ws_recheck_s: Seconds = 60.0
    clock_skew_s: float = 0.0
    log_format: LogFormat = "json"
    log_level: LogLevel = "info"
    max_body_bytes: Count = 1024 * 1024
    db_pool_min: Limit = 1
    db_pool_max: Count = 10
    maintenance_interval_s: Seconds = 3600.0
    # Abuse limits, per client address (vk_hive.limits); a limit of 0 disables it.
    # Requests to the auth endpoints (token refresh, OAuth, invitations, login links) per unit:
    auth_rate_limit: Limit = 60
    auth_rate_limit_unit: RateUnit = "minute"
    # Node WebSocket connections (each one ``auth`` attempt) per window, and how many may wait
    # for their ``auth`` at once (more are refused before any frame is read):
    node_auth_rate_limit: Limit = 60
    node_auth_rate_window_s: Seconds = 60.0
    node_auth_max_pending: Limit = 64
    # HTTP server of ``vk-hive serve`` (vk_hive.server): request headers complete within
    # header_timeout_s of connect or of the last response; a request body idle for body_timeout_s
    # closes the connection; X-Forwarded-* headers are trusted from forwarded_allow_ips only.
    header_timeout_s: Seconds = 10.0
    body_timeout_s: Seconds = 30.0
    forwarded_allow_ips: str = "127.0.0.1"
    # Organization webhooks (docs/operations.md "Webhooks of an organization"): the waits
    # between tries after the first (4 tries within about a minute), one try's deadline,
    # how long a node must stay offline before ``node_offline`` is sent (a node that comes back
    # sooner sends nothing), whether deliveries may go to loopback, private or link-local
    # addresses (off: an organization admin must not reach the hive's own network), and how
    # long settled deliveries are kept.
    webhook_retry_delays_s: tuple[Annotated[float, msgspec.Meta(gt=0, le=86400)], ...] = (
        5.0,
        15.0,
        40.0,
    )
    webhook_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    webhook_node_offline_grace_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 60.0
    webhook_allow_private_networks: bool = False
    webhook_history_days: Annotated[float, msgspec.Meta(gt=0, le=3650)] = 30.0
    github: OAuthProviderSettings = msgspec.field(default_factory=_github)
    google: OAuthProviderSettings = msgspec.field(default_factory=_google)

    def __post_init__(self) -> None:
        # Ranges of single settings are constraints of their types (checked as values are
        # loaded); here only what involves more than the type.
        if self.jwt_secret and len(self.jwt_secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                f"must be empty or at least {MIN_JWT_SECRET_BYTES} bytes", setting="jwt_secret"
            )
        if len(self.webhook_retry_delays_s) > 20:
            raise SettingsError(
                "webhook_retry_delays_s takes at most 20 delays", setting="webhook_retry_delays_s"
            )
        if self.db_pool_max < self.db_pool_min:
            raise SettingsError("db_pool_max must not be below db_pool_min", setting="db_pool_max")
        if self.activity_reconnect_max_s < self.activity_reconnect_initial_s:
            raise SettingsError(
                "activity_reconnect_max_s must not be below activity_reconnect_initial_s",
                setting="activity_reconnect_max_s",
            )

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


SPEC = SettingsSpec(model=HiveSettings, prefix=ENV_PREFIX, config_env=CONFIG_ENV, section="hive")
"""How the hive's settings are named (``VK_HIVE_<NAME>``, ``VK_HIVE_GITHUB_CLIENT_ID``) and
loaded."""

ENV_NAMES: Mapping[str, str] = SPEC.env_names()
"""Setting name (``github.client_id`` for a provider's) -> environment variable."""

LoadedSettings = Loaded[HiveSettings]


def load_settings(
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HiveSettings:
    """Build settings: defaults < TOML ``config_file`` (else ``VK_HIVE_CONFIG``) < ``env``
    (default: ``os.environ``) < ``overrides`` (CLI flags; ``None`` values are ignored). With
    where each value came from: :data:`SPEC` ``.load(...)``."""
    return SPEC.load(env=env, config_file=config_file, overrides=overrides).settings
