"""Rate limit of the auth endpoints per client address, with Litestar's rate-limit middleware.

The endpoints that take credentials without a session — token refresh, the OAuth handoff
(init, start, callback, redeem), invitations (look-up, accept) and browser login links
(``GET /login/{token}``, :mod:`vk_hive.web.signin`) — opt in with
``opt=AUTH_LIMITED``; no other route is limited. They share one budget per client
(:func:`vk_hive.limits.client_key`): ``auth_rate_limit`` requests per ``auth_rate_limit_unit``
(a fixed window). Beyond it the answer is 429 with ``Retry-After`` (the seconds until the window
resets), the ``RateLimit-*`` headers and the problem details body of every error
(``code: rate_limited``, answered by :mod:`vk_hive.api.problems`). Counts live in this process's
memory: several hive processes each count on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.stores.memory import MemoryStore

from vk_hive.context import HiveContext
from vk_hive.jobs.runner import PeriodicJob
from vk_hive.limits import client_key
from vk_hive.settings import HiveSettings

__all__ = ["AUTH_LIMITED", "STORE_NAME", "AuthRateLimit", "is_rate_limited"]

_OPT_KEY = "vk_auth_rate_limited"
AUTH_LIMITED: dict[str, Any] = {_OPT_KEY: True}
"""``opt`` of a route handler (or controller) whose requests count against the auth limit."""

STORE_NAME = "vk_auth_rate_limit"
_SWEEP_INTERVAL_S = 60.0


def is_rate_limited(opt: Mapping[str, Any]) -> bool:
    """Whether a route handler with this ``opt`` counts against the auth limit."""
    return bool(opt.get(_OPT_KEY))


def _limited(request: Request[Any, Any, Any]) -> bool:
    return is_rate_limited(request.route_handler.opt)


def _client(request: Request[Any, Any, Any]) -> str:
    return client_key(request.client.host if request.client else None)


class AuthRateLimit:
    """The middleware, its store and the job that drops expired counts from the store."""

    def __init__(self, settings: HiveSettings) -> None:
        self.store = MemoryStore()
        self.config: RateLimitConfig | None = None
        if settings.auth_rate_limit > 0:
            self.config = RateLimitConfig(
                rate_limit=(settings.auth_rate_limit_unit, settings.auth_rate_limit),
                identifier_for_request=_client,
                check_throttle_handler=_limited,
                store=STORE_NAME,
            )

    @property
    def middleware(self) -> list[DefineMiddleware]:
        return [] if self.config is None else [self.config.middleware]

    async def startup(self, ctx: HiveContext) -> None:
        """Startup hook: sweep expired counts every minute (a client that went away is never
        read again, so its count would otherwise stay)."""
        if self.config is not None:
            ctx.jobs.add(
                PeriodicJob(
                    "auth_rate_limit_sweep",
                    _SWEEP_INTERVAL_S,
                    self.store.delete_expired,
                    delay_first=True,
                )
            )
