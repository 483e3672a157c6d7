"""Webhook rules the node and the hive share: the signature, the retry schedule, the header and
URL rules, and payload templates — pure functions (stdlib and msgspec), no I/O.

- **Signature**: ``X-VK-Signature: sha256=<hex HMAC-SHA256 of the raw body bytes keyed with the
  secret>``; receivers recompute it over the bytes they received.
- **Schedule**: a delivery is tried at once, then again after each delay in turn; after the last
  failed try it is ``failed``.
- **Headers and URL**: a webhook may not set the headers its sender sets (``Content-Type``, every
  ``X-VK-*``) or that frame the request; its URL is an absolute http(s) URL with a host and no user
  info.
- **Payload templates**: a JSON document whose string values may hold ``{{dotted.path}}``
  placeholders naming fields of the event body. A string that is exactly one placeholder becomes
  that field's JSON value; inside longer text the value's text is spliced in (``null`` gives
  ``""``). Rendering walks the parsed document, so a value can never break out of its string.

Rule violations raise :class:`ValueError` with a message meant for the user; each service turns
it into its own 422.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "MAX_DEPTH",
    "MAX_TEMPLATE_BYTES",
    "RESERVED_HEADERS",
    "HeaderName",
    "HeaderValue",
    "Headers",
    "PayloadTemplate",
    "Secret",
    "Url",
    "check_headers",
    "check_template",
    "check_url",
    "flatten",
    "max_attempts",
    "next_attempt_at",
    "render",
    "request_headers",
    "signature",
]

MAX_TEMPLATE_BYTES = 16 * 1024
MAX_DEPTH = 32

# --- request types (bounds and characters; the rules below add what a schema cannot say) ------

Url = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2048, pattern=r"^[hH][tT][tT][pP][sS]?://[!-~]+$")
]
"""An absolute http(s) URL of visible ASCII (no spaces or control characters)."""
HeaderName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
]
"""An HTTP token (RFC 9110)."""
HeaderValue = Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^[\t\x20-\x7e]*$")]
"""Visible ASCII, spaces and tabs: no CR, LF or NUL."""
Headers = Annotated[dict[HeaderName, HeaderValue], msgspec.Meta(max_length=32)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
PayloadTemplate = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEMPLATE_BYTES)]

# --- signature ---------------------------------------------------------------------------------


def signature(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body keyed with secret>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_headers(
    *,
    user_agent: str,
    event: str,
    delivery_id: uuid.UUID,
    body: bytes,
    secret: str | None,
    custom: Mapping[str, str],
) -> dict[str, str]:
    """The headers of one try: the sender's own, the signature when there is a secret, then
    the webhook's (which may not name the sender's: :func:`check_headers`)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "X-VK-Event": event,
        "X-VK-Delivery": str(delivery_id),
    }
    if secret:
        headers["X-VK-Signature"] = signature(body, secret)
    headers.update(custom)
    return headers


# --- retry schedule ----------------------------------------------------------------------------


def max_attempts(delays: Sequence[float]) -> int:
    """How many tries a delivery gets in all."""
    return len(delays) + 1


def next_attempt_at(attempts_made: int, at: datetime, delays: Sequence[float]) -> datetime | None:
    """When to try again after try number ``attempts_made`` (1-based) failed at ``at``;
    ``None`` when that was the last try."""
    if attempts_made < 1:
        raise ValueError("attempts_made starts at 1")
    if attempts_made > len(delays):
        return None
    return at + timedelta(seconds=delays[attempts_made - 1])


# --- headers and URL ---------------------------------------------------------------------------

RESERVED_HEADERS: frozenset[str] = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "proxy-connection",
    }
)
"""Header names a webhook may not set (besides every ``X-VK-*`` name)."""


def check_headers(headers: Mapping[str, str], *, setter: str) -> None:
    """Refuse header names the sender (``setter``: "node", "hive") sets or that frame the
    request."""
    for name in headers:
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("x-vk-"):
            raise ValueError(f"header {name!r} is set by the {setter} and cannot be overridden")


def check_url(url: str) -> None:
    """Refuse anything but an absolute ``http``/``https`` URL with a host and no user info."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"url is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("url must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("url must name a host")
    if "@" in parts.netloc:
        raise ValueError("url must not carry user info; use headers or the secret instead")
    if port == 0:
        raise ValueError("url must not use port 0")


# --- payload templates -------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _strings(value: Any, depth: int = 0) -> list[str]:
    """Every string value of a parsed template (keys excluded); refuses too deep a document."""
    if depth > MAX_DEPTH:
        raise ValueError(f"payload_template is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v, depth + 1)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, depth + 1)]
    return []


def check_template(text: str, known: frozenset[str]) -> Any:
    """The parsed template; :class:`ValueError` naming what is wrong (not JSON, too large or
    deep, a placeholder that is not in ``known``)."""
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise ValueError(f"payload_template is larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        parsed = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"payload_template is not JSON: {exc}") from None
    for string in _strings(parsed):
        for name in _PLACEHOLDER.findall(string):
            if name not in known:
                raise ValueError(
                    f"payload_template: unknown placeholder {{{{{name}}}}}; known: "
                    + ", ".join(sorted(known))
                )
    return parsed


def flatten(body: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every field of ``body`` by dotted path, objects included (``task`` and ``task.title``)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        path = f"{prefix}{key}"
        out[path] = value
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """The template with its placeholders replaced by ``values`` (a missing one is ``null``)."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None:
            return values.get(whole.group(1))
        return _PLACEHOLDER.sub(lambda m: _text(values.get(m.group(1))), template)
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    return template
