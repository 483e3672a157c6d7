"""Per-client attempt limits: the client key of an address and token buckets per key.

Pure state with an injectable clock, no I/O; the node gateway's admission
(:mod:`vk_hive.gateway.admission`) and the REST rate limit (:mod:`vk_hive.api.ratelimit`) key
their counts with :func:`client_key`.

Invariants:

- A key holds at most ``capacity`` attempts; it regains ``capacity`` attempts per ``window_s``
  (continuously), so a client may burst ``capacity`` attempts and then keeps ``capacity /
  window_s`` attempts per second.
- A refused attempt costs nothing: a client that keeps retrying while refused is admitted again
  as soon as one attempt has been regained.
- The table of keys is bounded (``max_keys``): full buckets (clients idle for a window) are
  forgotten first, then the least recently used ones. Forgetting a bucket only ever grants a
  fresh budget, so the bound trades precision for memory, never correctness of admission.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time
from collections.abc import Callable

__all__ = ["AttemptBuckets", "client_key", "retry_after_s"]

_IPV6_GROUP_PREFIX = 64
"""An IPv6 client is keyed by its /64: one host usually owns a whole /64, so keying single
addresses would let it pick a fresh key for every attempt."""


def client_key(host: str | None) -> str:
    """The key a client's attempts are counted under: its IPv4 address, the /64 network of its
    IPv6 address, or the raw host string when it is not an IP address (a UNIX socket peer)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = ipaddress.IPv6Network((address, _IPV6_GROUP_PREFIX), strict=False)
        return str(network)
    return str(address)


def retry_after_s(wait_s: float) -> int:
    """A wait as the whole seconds of a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(wait_s))


class AttemptBuckets:
    """A token bucket per key: ``capacity`` attempts regained over ``window_s``."""

    def __init__(
        self,
        capacity: int,
        window_s: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity <= 0 or window_s <= 0 or max_keys <= 0:
            raise ValueError("capacity, window_s and max_keys must be positive")
        self.capacity = capacity
        self.rate = capacity / window_s
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, when they were counted); ordered from least to most recently used
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return float(self.capacity)
        tokens, counted_at = found
        return min(float(self.capacity), tokens + (now - counted_at) * self.rate)

    def take(self, key: str) -> float:
        """Spend one attempt of ``key``: 0.0 when admitted, else the seconds until the next
        attempt would be admitted (nothing is spent then)."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._shrink(now)
        return 0.0

    def _shrink(self, now: float) -> None:
        """Forget full buckets, then the least recently used ones, down to 90 % of
        ``max_keys`` (so the scan runs once per tenth of the table, not on every new key)."""
        full = [k for k in self._buckets if self._tokens(k, now) >= self.capacity]
        for key in full:
            del self._buckets[key]
        keep = self.max_keys - self.max_keys // 10
        while len(self._buckets) > keep:
            self._buckets.popitem(last=False)
