"""Per-client attempt limits (vk_hive.limits): client keys and token buckets, on a fake clock."""

from __future__ import annotations

import pytest

from vk_hive.limits import AttemptBuckets, client_key, retry_after_s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ipv4_clients_are_keyed_by_address_and_ipv6_clients_by_their_64() -> None:
    """IPv4 addresses are their own key; IPv6 addresses of one /64 share a key (one host can
    pick any address of its /64); an IPv4-mapped IPv6 address is its IPv4 address."""
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("203.0.113.8") != client_key("203.0.113.7")
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key(None) == client_key("") == "unknown"
    assert client_key("/run/hive.sock") == "/run/hive.sock"


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    """A wait becomes the whole seconds of a Retry-After header, rounded up, never 0."""
    assert retry_after_s(0.01) == 1
    assert retry_after_s(1.0) == 1
    assert retry_after_s(1.2) == 2


def test_a_burst_up_to_the_capacity_is_admitted_then_refused_with_the_wait() -> None:
    """A key may spend ``capacity`` attempts at once; the next is refused with the seconds until
    one attempt is regained (window / capacity)."""
    clock = Clock()
    buckets = AttemptBuckets(5, 60.0, clock=clock)
    assert [buckets.take("a") for _ in range(5)] == [0.0] * 5
    assert buckets.take("a") == pytest.approx(12.0)
    clock.now += 11.0
    assert buckets.take("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_keys_are_independent_and_refused_attempts_cost_nothing() -> None:
    """One key's spent budget does not touch another's; hammering while refused does not push
    the next admission further away."""
    clock = Clock()
    buckets = AttemptBuckets(2, 10.0, clock=clock)
    buckets.take("a")
    buckets.take("a")
    for _ in range(100):
        assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0
    clock.now += 5.0
    assert buckets.take("a") == 0.0


def test_a_steady_client_within_the_rate_is_never_refused() -> None:
    """A client making one attempt every window/capacity seconds, forever, is always admitted."""
    clock = Clock()
    buckets = AttemptBuckets(3, 30.0, clock=clock)
    for _ in range(1000):
        assert buckets.take("steady") == 0.0
        clock.now += 10.0


def test_the_table_of_keys_stays_bounded() -> None:
    """Many distinct clients never grow the table past ``max_keys``; idle (full) buckets are
    forgotten first, so a busy client keeps its count."""
    clock = Clock()
    buckets = AttemptBuckets(2, 10.0, max_keys=100, clock=clock)
    buckets.take("busy")
    buckets.take("busy")
    for i in range(1000):
        buckets.take(f"client-{i}")
        assert len(buckets) <= 100
    clock.now += 10.0  # every client-N bucket is full again: idle
    buckets.take("busy")
    buckets.take("busy")
    for i in range(1000, 1050):  # the table overflows: the idle buckets make room
        buckets.take(f"client-{i}")
    assert len(buckets) <= 100
    assert buckets.take("busy") > 0
