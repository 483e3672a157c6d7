"""What a webhook may say, checked when it is saved (``POST``/``PATCH /api/webhooks``).

The request types already bound sizes and refuse control characters (CR/LF in a header value,
spaces in a URL); these rules add what a schema cannot say: the URL must be an absolute http(s)
URL with a host and no user info, and custom headers may not replace the ones the node sets
itself (``Content-Type``, the ``X-VK-*`` headers) or framing headers (``Host``,
``Content-Length``, ``Transfer-Encoding``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from vk_node.errors import Unprocessable

__all__ = ["RESERVED_HEADERS", "check_headers", "check_url"]

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


def check_url(url: str) -> None:
    """Refuse anything but an absolute ``http``/``https`` URL with a host and no user info."""
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except ValueError as exc:
        raise Unprocessable(f"url is not a valid URL: {exc}") from None
    except httpx.InvalidURL as exc:
        raise Unprocessable(f"url is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Unprocessable("url must be an http:// or https:// URL")
    if not parts.hostname:
        raise Unprocessable("url must name a host")
    if "@" in parts.netloc:
        raise Unprocessable("url must not carry user info; use headers or the secret instead")
    if port == 0:
        raise Unprocessable("url must not use port 0")


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names the node sets or that frame the request."""
    for name in headers:
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("x-vk-"):
            raise Unprocessable(f"header {name!r} is set by the node and cannot be overridden")
