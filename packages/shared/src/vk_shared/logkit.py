"""Log lines of the node and the hive: one chain of processors that masks secrets and renders
one JSON object (or one readable console line) per event, for structlog's events and the standard
library's records alike.

The processors take and return plain dicts with structlog's processor signature
``(logger, method_name, event_dict)`` and import nothing of structlog: vk_shared depends on msgspec
and the standard library only. Each service hands :func:`line_processors` to structlog and calls
:func:`route_stdlib` (``vk_node.logging``, ``vk_hive.logging``), so both render, redact and route
the same way and differ only in which libraries they quiet.

Invariants:

- A value logged under a name of :data:`SECRET_KEYS` (any case) never reaches the output in
  full: it is shown as :func:`mask_secret` makes it, in every format, for structlog's events and
  for the standard library's records (with the context fields bound when they were logged). A
  password inside a URL (``postgresql://user:PASSWORD@host``) is masked under any name.
- :func:`mask_secret` is also what ``config show`` prints for secret settings: one rule for how
  much of a secret anything shows.
- Every line carries ``event``, ``level`` and ``timestamp`` (ISO 8601, UTC); lines of the standard
  library also ``logger`` (e.g. ``uvicorn.error``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "ConsoleRenderer",
    "Processor",
    "add_level",
    "add_timestamp",
    "format_exception",
    "is_secret_key",
    "level_number",
    "line_processors",
    "mask_secret",
    "mask_url_password",
    "redact_secrets",
    "render_json",
    "route_stdlib",
]

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], Any]
"""structlog's processor signature; the last processor of a chain returns the rendered line."""

SECRET_KEYS: Final = frozenset(
    {
        # bearer credentials and what makes them
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "password",
        "secret",
        "jwt_secret",
        # node API keys and the node's own API token (settings api_key, api_token)
        "api_key",
        "api_token",
        # OAuth: client secret, authorization code, the app's handoff code and PKCE verifier
        "client_secret",
        "authorization_code",
        "app_code",
        "app_verifier",
    }
)
"""Names whose values are secrets, wherever they are logged or shown (compared in lower case).

A bare ``code`` is not one of them: both services log protocol codes under that name
(``op.rejected``, ``link.auth_failed``, ``link.hive_error``) and need to read them."""

MASK: Final = "****"
_SHOWN: Final = 4
_SHOWN_FROM: Final = 24


def mask_secret(value: object) -> str:
    """A secret as ``abcd…wxyz``: its first and last 4 characters when it has at least 24 (so at
    most a third of it shows, and the start matches a node API key's listed prefix), ``****`` when
    shorter. ``None`` and the empty string give ``""``, so "not set" stays visible."""
    text = "" if value is None else str(value)
    if not text:
        return ""
    if len(text) < _SHOWN_FROM:
        return MASK
    return f"{text[:_SHOWN]}…{text[-_SHOWN:]}"


def is_secret_key(name: str) -> bool:
    """Whether a field or setting called ``name`` holds a secret."""
    return name.lower() in SECRET_KEYS


def mask_url_password(value: str) -> str:
    """``value`` with the password of a URL in it (``scheme://user:PASSWORD@host``) masked;
    anything else unchanged."""
    if "@" not in value or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def redact_secrets(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Mask the value of every secret-named field (empty values are left as they are) and the
    password of every URL."""
    for key, value in event.items():
        if value in (None, ""):
            continue
        if is_secret_key(key):
            event[key] = mask_secret(value)
        elif isinstance(value, str):
            event[key] = mask_url_password(value)
    return event


_LEVEL_ALIASES: Final = {"warn": "warning", "exception": "error", "fatal": "critical"}


def add_level(_logger: Any, method: str, event: EventDict) -> EventDict:
    """``level``: the name of the logging method (``warning`` for ``warn``, ``error`` for
    ``exception``)."""
    event.setdefault("level", _LEVEL_ALIASES.get(method, method))
    return event


def add_timestamp(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """``timestamp``: now, ISO 8601 in UTC with a ``Z``."""
    event["timestamp"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return event


def format_exception(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Replace ``exc_info`` (``True``, an exception or a ``sys.exc_info()`` tuple) by
    ``exception``, the formatted traceback."""
    exc_info = event.pop("exc_info", None)
    if not exc_info:
        return event
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is not None:
        event["exception"] = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    return event


def render_json(_logger: Any, _method: str, event: EventDict) -> str:
    """One JSON object; values JSON cannot hold are written as their ``repr``."""
    return json.dumps(event, default=repr)


class ConsoleRenderer:
    """``timestamp [level   ] event   key=value ...`` for people, the traceback below; colours
    for a terminal."""

    _COLOURS: Final = {
        "critical": "\x1b[31;1m",
        "error": "\x1b[31m",
        "warning": "\x1b[33m",
        "info": "\x1b[32m",
        "debug": "\x1b[34m",
    }
    _KEY: Final = "\x1b[36m"
    _RESET: Final = "\x1b[0m"

    def __init__(self, *, colors: bool = False) -> None:
        self.colors = colors

    def __call__(self, _logger: Any, _method: str, event: EventDict) -> str:
        fields = dict(event)
        timestamp = str(fields.pop("timestamp", ""))
        level = str(fields.pop("level", ""))
        name = str(fields.pop("event", ""))
        exception = fields.pop("exception", None)
        shown_level = f"[{level:<8}]"
        key_on, key_off = "", ""
        if self.colors:
            shown_level = f"{self._COLOURS.get(level, '')}{shown_level}{self._RESET}"
            key_on, key_off = self._KEY, self._RESET
        pairs = " ".join(
            f"{key_on}{key}{key_off}={value if isinstance(value, str) else repr(value)}"
            for key, value in sorted(fields.items())
        )
        line = f"{timestamp} {shown_level} {name:<30} {pairs}".rstrip()
        return f"{line}\n{exception}" if exception else line


def line_processors(log_format: str, *, colors: bool = False) -> list[Processor]:
    """The chain after the context is merged: level, timestamp, redaction, traceback, renderer
    (``json``, else console)."""
    renderer: Processor = render_json if log_format == "json" else ConsoleRenderer(colors=colors)
    return [add_level, add_timestamp, redact_secrets, format_exception, renderer]


def level_number(name: str) -> int:
    """The standard library's number of a level name (``info`` when the name is unknown)."""
    number = logging.getLevelName(name.upper())
    return number if isinstance(number, int) else logging.INFO


class _StdlibFormatter(logging.Formatter):
    """Turns a standard library record into an event (its message, logger name, traceback and
    the bound context; ``extra=`` attributes such as uvicorn's ``color_message`` are left out)
    and runs it through the same chain."""

    def __init__(self, chain: list[Processor], context: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__()
        self.chain = chain
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = dict(self.context())
        event["event"] = record.getMessage()
        event["logger"] = record.name
        if record.exc_info:
            event["exc_info"] = record.exc_info
        method = record.levelname.lower()
        line: Any = event
        for processor in self.chain:
            line = processor(None, method, line)
        return str(line)


# WebSocket libraries dump handshake headers and frames at debug level — a node's ``auth`` frame
# with its API key included (websockets directly, uvicorn's WebSocket protocol on
# ``uvicorn.error``).
_ALWAYS_AT_LEAST: Final = {"websockets": logging.INFO, "uvicorn.error": logging.INFO}
_UVICORN: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")


def route_stdlib(
    chain: list[Processor],
    level: int,
    *,
    context: Callable[[], Mapping[str, Any]] = dict,
    at_least: Mapping[str, int] | None = None,
    filters: Iterable[tuple[str, logging.Filter]] = (),
) -> logging.Handler:
    """Send every standard library record (uvicorn's, asyncpg's, ...) to stderr through ``chain``.

    The root logger gets one handler at ``level``; uvicorn's loggers lose their own handlers and
    propagate to it. ``context`` adds the fields bound to the current context (structlog's
    context variables). Loggers named in ``at_least`` (and the WebSocket libraries, always at
    least ``INFO``) never log below their floor; ``filters`` are added to the named loggers once.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StdlibFormatter(chain, context))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in _UVICORN:
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True
    for name, floor in {**_ALWAYS_AT_LEAST, **(at_least or {})}.items():
        logging.getLogger(name).setLevel(max(level, floor))
    for name, log_filter in filters:
        named = logging.getLogger(name)
        if not any(type(existing) is type(log_filter) for existing in named.filters):
            named.addFilter(log_filter)
    return handler
