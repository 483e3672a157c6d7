"""What a webhook may say, checked when it is saved (``POST``/``PATCH /api/webhooks``).

The request types already bound sizes and refuse control characters (CR/LF in a header value,
spaces in a URL); these rules add what a schema cannot say: the URL must be an absolute http(s)
URL with a host and no user info, and custom headers may not replace the ones the node sets
itself (``Content-Type``, the ``X-VK-*`` headers) or framing headers (``Host``,
``Content-Length``, ``Transfer-Encoding``...).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from vk_node.errors import Unprocessable
from vk_shared import webhooks as shared
from vk_shared.webhooks import RESERVED_HEADERS

__all__ = ["RESERVED_HEADERS", "check_headers", "check_url"]


def check_url(url: str) -> None:
    """Refuse anything but an absolute ``http``/``https`` URL with a host and no user info."""
    try:
        shared.check_url(url)
        httpx.URL(url)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    except httpx.InvalidURL as exc:
        raise Unprocessable(f"url is not a valid URL: {exc}") from None


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names the node sets or that frame the request."""
    try:
        shared.check_headers(headers, setter="node")
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
