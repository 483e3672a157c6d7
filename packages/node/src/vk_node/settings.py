"""Node settings: one frozen Struct built once from defaults < TOML file < environment < CLI flags.

Nothing here reads the environment at import time. ``main()`` (or a test) calls
:func:`load_settings` with an explicit environment mapping and passes the result down to
:func:`vk_node.app.create_app`, so several nodes can live in one process.

Every value remembers where it came from (:class:`LoadedSettings.sources`) for ``config show``.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from vk_shared.settings import Loaded, SettingsError, SettingsSpec

__all__ = [
    "CONFIG_ENV",
    "ENV_NAMES",
    "SPEC",
    "LoadedSettings",
    "NodeSettings",
    "SettingsError",
    "default_data_dir",
    "load_settings",
    "split_hive_urls",
]

CONFIG_ENV = "VK_NODE_CONFIG"
"""Environment variable naming the optional TOML settings file."""

LogFormat = Literal["json", "console"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Executor = Annotated[str, msgspec.Meta(pattern="^[A-Z][A-Z0-9_]{0,63}$")]
ShortStr = Annotated[str, msgspec.Meta(max_length=255)]
UrlStr = Annotated[str, msgspec.Meta(max_length=2048)]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class NodeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything a node process is configured with."""

    data_dir: str = ""
    """Directory holding ``db.sqlite`` and ``worktrees/``; empty = the per-user data dir."""
    host: ShortStr = "127.0.0.1"
    port: Port = 3000
    hive_url: UrlStr = ""
    """Hive base URL, or several separated by commas (the link fails over between them, in
    order); empty = standalone (fully working offline). See :attr:`hive_urls`."""
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
    pr_monitor_interval_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 60.0
    """How often the state of open pull requests is asked from GitHub (``gh pr view``)."""
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

    image_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024 * 1024)] = 20 * 1024 * 1024
    """Largest image ``POST /api/images`` accepts (bytes; 413 over it)."""
    log_retention_days: Annotated[int, msgspec.Meta(ge=0, le=36500)] = 30
    """Log entries of runs that finished more than this many days ago are deleted; 0 = keep
    forever."""
    archived_task_retention_days: Annotated[int, msgspec.Meta(ge=0, le=36500)] = 0
    """Done/cancelled tasks archived more than this many days ago are deleted with their
    attempts, logs and images; 0 = keep forever."""
    retention_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    """How often the retention job runs (its first run is ``retention_first_delay_s`` after
    start)."""
    retention_first_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    retention_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    """Rows one retention transaction deletes at most (the writer is never held for long)."""
    image_orphan_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 86400.0
    """An uploaded image no task uses is deleted by the retention job once it is this old."""

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
    webhook_retry_delays_s: tuple[Annotated[float, msgspec.Meta(gt=0, le=86400)], ...] = (
        5.0,
        15.0,
        40.0,
    )
    """Webhook deliveries: after a failed try, wait these delays in turn before the next one
    (``5,15,40``: four tries within about a minute; at most 20 delays); empty = one try only."""
    webhook_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    """One webhook try (connect, send, response head) must end within this."""
    webhook_history_days: Annotated[float, msgspec.Meta(gt=0, le=3650)] = 30.0
    """Delivered and failed webhook deliveries (and their tries) older than this are deleted
    (checked at start and hourly); pending ones are kept."""

    def __post_init__(self) -> None:
        split_hive_urls(self.hive_url)
        if self.public_url and not _is_url(self.public_url):
            raise SettingsError(
                f"not an http(s)/ws(s) URL: {self.public_url!r}", setting="public_url"
            )
        if len(self.webhook_retry_delays_s) > 20:
            raise SettingsError(
                "webhook_retry_delays_s takes at most 20 delays", setting="webhook_retry_delays_s"
            )
        if self.link_backoff_max_s < self.link_backoff_initial_s:
            raise SettingsError(
                "link_backoff_max_s must not be below link_backoff_initial_s",
                setting="link_backoff_max_s",
            )

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
    def images_dir(self) -> Path:
        """Uploaded images, named by the SHA-256 of their bytes."""
        return self.data_path / "images"

    @property
    def hive_urls(self) -> tuple[str, ...]:
        """The hive URLs of ``hive_url`` in order, duplicates removed (empty when standalone)."""
        return split_hive_urls(self.hive_url)

    @property
    def standalone(self) -> bool:
        """No hive configured: the node works fully offline."""
        return not self.hive_url


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https", "ws", "wss") and bool(parts.netloc)


def _hive_key(url: str) -> tuple[str, str]:
    """What makes two entries the same hive: the secure flag and the host:port (the path is
    ignored — the link always uses ``/v1/nodes/ws``; ``http`` and ``ws`` are one hive)."""
    parts = urlsplit(url)
    secure = "s" if parts.scheme in ("https", "wss") else ""
    return (secure, parts.netloc.lower())


def split_hive_urls(raw: str) -> tuple[str, ...]:
    """``VK_HIVE_URL`` as a list: comma-separated http(s)/ws(s) URLs, blanks around entries
    trimmed, an entry naming the same hive as an earlier one dropped. An empty entry or one that
    is not such a URL is refused (:class:`SettingsError` naming the entry); ``""`` is standalone."""
    if not raw:
        return ()
    urls: list[str] = []
    seen: set[tuple[str, str]] = set()
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            raise SettingsError(
                f"entry {position} of the hive URL list is empty", setting="hive_url"
            )
        if not _is_url(entry):
            raise SettingsError(f"not an http(s)/ws(s) URL: {entry!r}", setting="hive_url")
        key = _hive_key(entry)
        if key not in seen:
            seen.add(key)
            urls.append(entry)
    return tuple(urls)


def default_data_dir(env: Mapping[str, str]) -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/vk-node`` or ``~/.local/share/vk-node``."""
    xdg = env.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "vk-node"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "vk-node"


def _finish(values: dict[str, Any], sources: dict[str, str], env: Mapping[str, str]) -> None:
    """Absolute directories (the per-user data dir by default) and the host name as the default
    node name."""
    if not values.get("data_dir"):
        values["data_dir"] = str(default_data_dir(env))
    else:
        values["data_dir"] = str(Path(values["data_dir"]).expanduser().absolute())
    if values.get("worktree_dir"):
        values["worktree_dir"] = str(Path(values["worktree_dir"]).expanduser().absolute())
    if not values.get("name"):
        values["name"] = socket.gethostname()[:255] or "vk-node"
        if sources["name"] == "default":
            sources["name"] = "default (host name)"


def _upper_names(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [v.upper() if isinstance(v, str) else v for v in value]
    return value


SPEC = SettingsSpec(
    model=NodeSettings,
    prefix="VK_NODE_",
    config_env=CONFIG_ENV,
    section="node",
    # DESIGN.md §9: the hive's URL is VK_HIVE_URL on the node too.
    env_exceptions={"hive_url": "VK_HIVE_URL"},
    normalize={"executors": _upper_names},
    finish=_finish,
)
"""How the node's settings are named (``VK_NODE_<NAME>``) and loaded."""

ENV_NAMES: Mapping[str, str] = SPEC.env_names()
"""Setting name -> environment variable."""

LoadedSettings = Loaded[NodeSettings]


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Build the settings.

    ``env`` defaults to ``os.environ`` (read now, never at import). ``config_file`` (else
    ``VK_NODE_CONFIG``) is an optional TOML file with the setting names as keys (flat, or in a
    ``[node]`` table). ``overrides`` are CLI flags by setting name; ``None`` values are ignored.
    """
    return SPEC.load(env=env, config_file=config_file, overrides=overrides)
