"""One delivery try: a signed JSON POST with a hard deadline.

Headers: ``Content-Type: application/json``, ``User-Agent: vk-hive/<version>``, ``X-VK-Event``,
``X-VK-Delivery`` (the same on every try: receivers drop repeats by it), ``X-VK-Signature``
when the webhook has a secret (:func:`vk_shared.webhooks.signature`), then the webhook's own
headers. Connect, send and response head must end within the timeout; the response body is
never read, redirects are not followed (a 3xx is a failed try), only a 2xx is delivered. The
destination is checked before the try (:mod:`.destination`). Nothing here raises for a failed
try: the outcome says what happened.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping

import httpx
import msgspec

from vk_hive import __version__
from vk_hive.webhooks.destination import DestinationRefused, check_destination
from vk_shared.webhooks import request_headers

__all__ = ["Outcome", "post"]

_MAX_ERROR_CHARS = 500


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    status_code: int | None
    duration_ms: int
    error: str | None


def headers_for(
    *,
    event: str,
    delivery_id: uuid.UUID,
    body: bytes,
    secret: str | None,
    custom: Mapping[str, str],
) -> dict[str, str]:
    return request_headers(
        user_agent=f"vk-hive/{__version__}",
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
    allow_private: bool,
) -> Outcome:
    """One try; never raises for a refused destination, a network failure, a timeout or an
    error status."""
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            await check_destination(url, allow_private=allow_private, must_resolve=True)
            async with client.stream("POST", url, content=body, headers=dict(headers)) as answer:
                status = answer.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except TimeoutError:
        error = f"timed out after {timeout_s:g} s"
    except DestinationRefused as exc:
        error = str(exc)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return Outcome(
        status_code=status,
        duration_ms=int((time.monotonic() - started) * 1000),
        error=error and error[:_MAX_ERROR_CHARS],
    )
