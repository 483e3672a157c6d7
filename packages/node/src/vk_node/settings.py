"""Node settings: one frozen Struct built once from defaults < TOML file < environment < CLI flags.

Nothing here reads the environment at import time. ``main()`` (or a test) calls
:func:`load_settings` with an explicit environment mapping and passes the result down to
:func:`vk_node.app.create_app`, so several nodes can live in one process.

Every value remembers where it came from (:class:`LoadedSettings.sources`) for ``config show``.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "CONFIG_ENV",
    "ENV_NAMES",
    "SECRET_FIELDS",
    "LoadedSettings",
    "NodeSettings",
    "SettingsError",
    "default_data_dir",
    "load_settings",
]

CONFIG_ENV = "VK_NODE_CONFIG"
"""Environment variable naming the optional TOML settings file."""

LogFormat = Literal["json", "console"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Executor = Annotated[str, msgspec.Meta(pattern="^[A-Z][A-Z0-9_]{0,63}$")]
ShortStr = Annotated[str, msgspec.Meta(max_length=255)]
UrlStr = Annotated[str, msgspec.Meta(max_length=2048)]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class SettingsError(ValueError):
    """Settings that cannot be used; the message is one line naming the setting."""


class NodeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything a node process is configured with."""

    data_dir: str = ""
    """Directory holding ``db.sqlite`` and ``worktrees/``; empty = the per-user data dir."""
    host: ShortStr = "127.0.0.1"
    port: Port = 3000
    hive_url: UrlStr = ""
    """Hive base URL; empty = standalone (fully working offline)."""
    api_key: UrlStr = ""
    """Node API key for the hive (secret)."""
    name: ShortStr = ""
    """Node name shown on the hive; empty = the host name."""
    public_url: UrlStr = ""
    api_token: Annotated[str, msgspec.Meta(pattern=r"^(?:[\x21-\x7e]{16,1024})?$")] = ""
    """Bearer token the local API requires (secret; 16+ visible ASCII characters). Required when
    ``host`` is not a loopback address; empty = no token (loopback only)."""
    executors: tuple[Executor, ...] = ()
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 1
    log_format: LogFormat = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    """Largest request body the REST API accepts (bytes)."""
    shutdown_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    """How long ``serve`` waits for in-flight requests on SIGTERM/SIGINT."""
    worktree_dir: str = ""
    """Where attempt worktrees live; empty = ``<data_dir>/worktrees``."""
    branch_prefix: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9._/-]*$")] = "vk"
    """Attempt branches are ``<prefix>/<short>-<slug>`` (just ``<short>-<slug>`` when empty)."""
    stop_grace_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 5.0
    """Stopping a run: SIGTERM to its process group, SIGKILL after this many seconds."""
    exit_drain_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 1.0
    """After a run's main process exits, how long its output pipes may stay open (held by
    lingering children) before the rest of its process group is killed."""
    worktree_idle_expiry_h: Annotated[float, msgspec.Meta(gt=0)] = 72.0
    """Worktrees of attempts idle this long (nothing running) are removed by the sweeper."""
    worktree_sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    """How often vanished, expired and archived-task worktrees are cleaned up."""
    worktree_orphan_cleanup: bool = True
    """At startup delete worktree directories no live attempt references."""
    log_batch_lines: Annotated[int, msgspec.Meta(ge=1, le=500)] = 200
    """A run's output is written to ``log_entries`` in batches of at most this many lines ..."""
    log_batch_interval_s: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.1
    """... or whatever arrived within this interval, one transaction per batch."""
    log_queue_lines: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    """Lines buffered per run before reading its pipes pauses (backpressure, nothing dropped)."""
    log_max_line_chars: Annotated[int, msgspec.Meta(ge=64, le=256 * 1024)] = 64 * 1024
    """Longer output lines are split into several log rows."""
    git_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    """Timeout of one git command run by the executor."""
    env_passthrough: tuple[EnvName, ...] = (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "AMP_API_KEY",
        "CURSOR_API_KEY",
        "DASHSCOPE_API_KEY",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "SSH_AUTH_SOCK",
    )
    """Variables of the node's environment passed to runs besides PATH, HOME, LANG, ... (never
    ``VK_NODE_*``/``VK_HIVE_*``)."""

    machine_id: Annotated[str, msgspec.Meta(max_length=255, pattern=r"^[A-Za-z0-9._-]*$")] = ""
    """Stable machine id sent to the hive; empty = a hash of host name, OS and architecture."""
    link_backoff_initial_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0
    """Hive link: first reconnect delay; it doubles after each failure ..."""
    link_backoff_max_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    """... up to this (also the delay after an authentication failure)."""
    link_backoff_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    """Each reconnect delay is randomly shortened by up to this fraction."""
    link_open_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    """Opening the WebSocket (TCP + handshake) must finish within this."""
    link_auth_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    """The hive must answer ``auth`` within this."""
    link_ping_interval_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 20.0
    """WebSocket ping interval; a pong missing for as long closes the connection."""
    outbox_batch_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    """Most ops in one ``op_batch``."""
    outbox_linger_s: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.005
    """How long the sender waits for more ops to fill a batch while another batch is in flight
    (with none in flight, ops go out at once)."""
    outbox_window: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    """Most ``op_batch`` frames in flight (sent, not acked)."""
    outbox_park_retry_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 2.0
    """After the hive parks an op (its ack stops before it), resend from it after this delay."""
    outbox_ack_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    """A batch not acked within this is resent from the ack frontier."""
    digest_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """How often a connected node sends an anti-entropy ``digest`` (also sent on connect)."""
    lease_restore_grace_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 10.0
    """After a restart, an unfinished hive assignment may keep running this long without a fresh
    ``lease_grant`` before the node fences it."""
    clock_skew_s: Annotated[float, msgspec.Meta(ge=-86400, le=86400)] = 0.0
    """Added to every wall-clock reading of the hive link (tests skew clocks with it; leases use
    only the monotonic clock)."""

    def __post_init__(self) -> None:
        for field, value in (("hive_url", self.hive_url), ("public_url", self.public_url)):
            if value:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
                    raise SettingsError(f"{field}: not an http(s)/ws(s) URL: {value!r}")
        if self.link_backoff_max_s < self.link_backoff_initial_s:
            raise SettingsError("link_backoff_max_s must not be below link_backoff_initial_s")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        """The SQLite file of this node."""
        return self.data_path / "db.sqlite"

    @property
    def worktrees_dir(self) -> Path:
        if self.worktree_dir:
            return Path(self.worktree_dir).expanduser().absolute()
        return self.data_path / "worktrees"

    @property
    def standalone(self) -> bool:
        """No hive configured: the node works fully offline."""
        return not self.hive_url


ENV_NAMES: Mapping[str, str] = {
    "data_dir": "VK_NODE_DATA_DIR",
    "host": "VK_NODE_HOST",
    "port": "VK_NODE_PORT",
    "hive_url": "VK_HIVE_URL",
    "api_key": "VK_NODE_API_KEY",
    "name": "VK_NODE_NAME",
    "public_url": "VK_NODE_PUBLIC_URL",
    "api_token": "VK_NODE_API_TOKEN",
    "executors": "VK_NODE_EXECUTORS",
    "max_concurrent": "VK_NODE_MAX_CONCURRENT",
    "log_format": "VK_NODE_LOG_FORMAT",
    "log_level": "VK_NODE_LOG_LEVEL",
    "max_body_bytes": "VK_NODE_MAX_BODY_BYTES",
    "shutdown_timeout_s": "VK_NODE_SHUTDOWN_TIMEOUT_S",
    "worktree_dir": "VK_NODE_WORKTREE_DIR",
    "branch_prefix": "VK_NODE_BRANCH_PREFIX",
    "stop_grace_s": "VK_NODE_STOP_GRACE_S",
    "exit_drain_s": "VK_NODE_EXIT_DRAIN_S",
    "worktree_idle_expiry_h": "VK_NODE_WORKTREE_IDLE_EXPIRY_H",
    "worktree_sweep_interval_s": "VK_NODE_WORKTREE_SWEEP_INTERVAL_S",
    "worktree_orphan_cleanup": "VK_NODE_WORKTREE_ORPHAN_CLEANUP",
    "log_batch_lines": "VK_NODE_LOG_BATCH_LINES",
    "log_batch_interval_s": "VK_NODE_LOG_BATCH_INTERVAL_S",
    "log_queue_lines": "VK_NODE_LOG_QUEUE_LINES",
    "log_max_line_chars": "VK_NODE_LOG_MAX_LINE_CHARS",
    "git_timeout_s": "VK_NODE_GIT_TIMEOUT_S",
    "env_passthrough": "VK_NODE_ENV_PASSTHROUGH",
    "machine_id": "VK_NODE_MACHINE_ID",
    "link_backoff_initial_s": "VK_NODE_LINK_BACKOFF_INITIAL_S",
    "link_backoff_max_s": "VK_NODE_LINK_BACKOFF_MAX_S",
    "link_backoff_jitter": "VK_NODE_LINK_BACKOFF_JITTER",
    "link_open_timeout_s": "VK_NODE_LINK_OPEN_TIMEOUT_S",
    "link_auth_timeout_s": "VK_NODE_LINK_AUTH_TIMEOUT_S",
    "link_ping_interval_s": "VK_NODE_LINK_PING_INTERVAL_S",
    "outbox_batch_size": "VK_NODE_OUTBOX_BATCH_SIZE",
    "outbox_linger_s": "VK_NODE_OUTBOX_LINGER_S",
    "outbox_window": "VK_NODE_OUTBOX_WINDOW",
    "outbox_park_retry_s": "VK_NODE_OUTBOX_PARK_RETRY_S",
    "outbox_ack_timeout_s": "VK_NODE_OUTBOX_ACK_TIMEOUT_S",
    "digest_interval_s": "VK_NODE_DIGEST_INTERVAL_S",
    "lease_restore_grace_s": "VK_NODE_LEASE_RESTORE_GRACE_S",
    "clock_skew_s": "VK_NODE_CLOCK_SKEW_S",
}
"""Setting name -> environment variable."""

SECRET_FIELDS = frozenset({"api_key", "api_token"})
"""Settings whose values are never printed or logged in full."""

_SECRET_RULES = {
    "api_key": "at most 2048 characters",
    "api_token": "16 to 1024 visible ASCII characters (no spaces)",
}

_FIELDS = {f.name: f for f in msgspec.structs.fields(NodeSettings)}
_CLEARABLE = frozenset({"hive_url", "api_key", "api_token", "public_url"})
"""Settings an empty environment variable sets to empty (others ignore an empty variable)."""


class LoadedSettings(msgspec.Struct, frozen=True):
    """The settings and, per setting, where its value came from (``default``, ``file PATH``,
    ``env VK_NODE_PORT``, ``flag --port``)."""

    settings: NodeSettings
    sources: dict[str, str]


def default_data_dir(env: Mapping[str, str]) -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/vk-node`` or ``~/.local/share/vk-node``."""
    xdg = env.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "vk-node"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "vk-node"


def _convert(name: str, value: Any, origin: str) -> Any:
    """One value converted to the type of setting ``name``; errors name the setting."""
    field = _FIELDS.get(name)
    if field is None:
        raise SettingsError(f"unknown setting {name!r} ({origin})")
    if name in ("executors", "env_passthrough") and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if name == "executors" and isinstance(value, list | tuple):
        value = [v.upper() if isinstance(v, str) else v for v in value]
    if isinstance(value, str) and "\x00" in value:
        raise SettingsError(f"{origin}: NUL bytes are not allowed")
    try:
        return msgspec.convert(value, field.type, strict=False)
    except msgspec.ValidationError as exc:
        if name in SECRET_FIELDS:  # never echo a secret, not even a malformed one
            raise SettingsError(f"{origin}: invalid value: {_SECRET_RULES[name]}") from None
        raise SettingsError(f"{origin}: invalid value {value!r}: {exc}") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None
    # Accept both a flat file and one with a [node] table.
    node = data.pop("node", None)
    if isinstance(node, dict):
        data = {**data, **node}
    return data


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Build the settings.

    ``env`` defaults to ``os.environ`` (read now, never at import). ``config_file`` (else
    ``VK_NODE_CONFIG``) is an optional TOML file with the setting names as keys. ``overrides`` are
    CLI flags by setting name; ``None`` values are ignored.
    """
    environ = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {name: "default" for name in _FIELDS}

    file = config_file if config_file is not None else environ.get(CONFIG_ENV) or None
    if file is not None:
        path = Path(file).expanduser()
        for key, raw in _read_file(path).items():
            values[key] = _convert(key, raw, f"setting {key!r} in {path}")
            sources[key] = f"file {path}"
    for name, var in ENV_NAMES.items():
        raw = environ.get(var)
        if raw is not None and (raw != "" or name in _CLEARABLE):
            values[name] = _convert(name, raw, var)
            sources[name] = f"env {var}"
    for name, raw in (overrides or {}).items():
        if raw is not None:
            flag = "--" + name.replace("_", "-")
            values[name] = _convert(name, raw, flag)
            sources[name] = f"flag {flag}"

    if not values.get("data_dir"):
        values["data_dir"] = str(default_data_dir(environ))
    else:
        values["data_dir"] = str(Path(values["data_dir"]).expanduser().absolute())
    if values.get("worktree_dir"):
        values["worktree_dir"] = str(Path(values["worktree_dir"]).expanduser().absolute())
    if not values.get("name"):
        values["name"] = socket.gethostname()[:255] or "vk-node"
        if sources["name"] == "default":
            sources["name"] = "default (host name)"
    try:
        settings = NodeSettings(**values)
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from None
    return LoadedSettings(settings=settings, sources=sources)
