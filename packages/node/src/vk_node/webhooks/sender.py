"""One webhook delivery try: a signed JSON POST with a hard deadline.

Headers: ``Content-Type: application/json``, ``User-Agent: vk-node/<version>``, ``X-VK-Event``
(the event), ``X-VK-Delivery`` (the delivery id, the same on every try: receivers use it to
drop repeats), ``X-VK-Signature: sha256=<hex HMAC-SHA256 of the raw body bytes keyed with the
secret>`` when the webhook has a secret, then the webhook's own headers.

The whole try — connect, send, response head — must finish within ``timeout_s``; the response
body is never read, redirects are not followed (a 3xx is a failed try), and only a 2xx counts
as delivered. Nothing here raises for a failed try: the outcome says what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from uuid import UUID

import httpx
import msgspec

from vk_node import __version__
from vk_shared import webhooks as shared
from vk_shared.webhooks import signature

__all__ = ["Outcome", "post", "request_headers", "signature"]

_MAX_ERROR_CHARS = 500


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    status_code: int | None
    """The HTTP status the endpoint answered; ``None`` when it did not answer."""
    duration_ms: int
    error: str | None
    """Why the try failed (``None`` when delivered)."""

    @property
    def delivered(self) -> bool:
        return self.error is None


def request_headers(
    *,
    event: str,
    delivery_id: UUID,
    body: bytes,
    secret: str | None,
    custom: Mapping[str, str],
) -> dict[str, str]:
    return shared.request_headers(
        user_agent=f"vk-node/{__version__}",
        event=event,
        delivery_id=delivery_id,
        body=body,
        secret=secret,
        custom=custom,
    )


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
) -> Outcome:
    """One try; never raises for a network failure, a timeout or an error status."""
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", url, content=body, headers=dict(headers)) as answer:
                status = answer.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except TimeoutError:
        error = f"timed out after {timeout_s:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(
        status_code=status, duration_ms=duration_ms, error=error and error[:_MAX_ERROR_CHARS]
    )
