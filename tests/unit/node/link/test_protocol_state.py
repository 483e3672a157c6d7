"""The hive link's protocol state without I/O: backoff, send window, leases, URLs."""

from __future__ import annotations

from uuid import uuid4

import pytest

from vk_node.link.backoff import Backoff
from vk_node.link.connection import Rotation
from vk_node.link.identity import host_machine_id, http_base_url, ws_url
from vk_node.link.leases import LeaseTable
from vk_node.link.window import SendWindow


def test_backoff_doubles_to_the_maximum_and_resets_after_a_healthy_session() -> None:
    """Failures double the delay up to the cap; a session longer than the initial delay resets."""
    b = Backoff(5, 60)
    assert [b.failure() for _ in range(6)] == [5, 10, 20, 40, 60, 60]
    assert b.session_ended(duration_s=3) == 60  # short session: still backing off
    assert b.session_ended(duration_s=30) == 5  # healthy session: reset


def test_rotation_starts_each_round_with_the_hive_of_the_last_healthy_session() -> None:
    """Rounds go over every URL in configured order, starting with the first until a session
    was healthy somewhere, then with that URL."""
    r = Rotation(("a", "b", "c"))
    assert r.round() == ("a", "b", "c")
    r.held("b")
    assert r.round() == ("b", "c", "a")
    r.held("a")
    assert r.round() == ("a", "b", "c")
    assert Rotation(("only",)).round() == ("only",)
    with pytest.raises(ValueError, match="no hive URL"):
        Rotation(())


def test_backoff_jitter_only_shortens_and_auth_failures_wait_the_maximum() -> None:
    """Jitter takes up to its fraction off a delay; an auth failure waits the maximum."""
    b = Backoff(5, 60, jitter=0.5, rand=lambda: 1.0)
    assert b.failure() == 2.5
    assert b.auth_failure() == 30.0
    assert Backoff(5, 60).auth_failure() == 60
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(10, 5)


def test_window_limits_batches_in_flight_and_completes_on_cumulative_acks() -> None:
    """At most `window` batches fly; a cumulative ack completes every batch it covers."""
    w = SendWindow(0, window=2, park_retry_s=1, ack_timeout_s=10)
    w.sent(1, 50, now=0)
    w.sent(51, 100, now=0)
    assert not w.can_send(0)
    assert not w.acked(100, now=1)
    assert w.can_send(1)
    assert w.next_seq == 101
    assert not w.in_flight


def test_window_rewinds_and_pauses_when_the_hive_parks_an_op() -> None:
    """An ack stopping inside the oldest batch means a parked op: resend from it after a pause."""
    w = SendWindow(0, window=4, park_retry_s=2, ack_timeout_s=10)
    w.sent(1, 10, now=0)
    w.sent(11, 20, now=0)
    assert w.acked(6, now=1)
    assert w.next_seq == 7
    assert not w.in_flight
    assert not w.can_send(2.5)
    assert w.can_send(3)


def test_window_rewinds_to_the_frontier_when_acks_stop_and_on_resend_requests() -> None:
    """A batch unacked for ack_timeout_s is resent from the frontier; resend_from rewinds."""
    w = SendWindow(5, window=4, park_retry_s=1, ack_timeout_s=3)
    w.sent(6, 9, now=0)
    assert not w.check_timeouts(2)
    assert w.check_timeouts(3)
    assert w.next_seq == 6
    w.sent(6, 9, now=4)
    w.resend_from(2)
    assert w.next_seq == 2
    assert not w.in_flight


def test_leases_use_relative_ttls_renew_at_a_third_and_expire_on_the_monotonic_clock() -> None:
    """A grant sets deadline = receipt + ttl; renewal is due at ttl/3; tokens never go down."""
    leases = LeaseTable()
    a = uuid4()
    leases.grant(a, token=7, ttl_s=9, now=100)
    assert leases.due_for_renewal(102) == []
    assert leases.due_for_renewal(103) == [a]
    assert leases.expired(108.9) == []
    assert leases.expired(109) == [a]
    leases.grant(a, token=3, ttl_s=9, now=108)
    lease = leases.get(a)
    assert lease is not None
    assert lease.token == 7
    assert lease.deadline == 117
    assert leases.next_wakeup(renewing=False) == 117
    assert leases.release(a) is not None
    assert a not in leases


def test_urls_and_host_machine_id() -> None:
    """VK_HIVE_URL becomes the ws(s) control-channel URL; the host-derived id of stores from
    earlier versions is 16 hex and stable."""
    assert ws_url("http://h:9000/some/path") == "ws://h:9000/v1/nodes/ws"
    assert ws_url("https://h") == "wss://h/v1/nodes/ws"
    assert http_base_url("wss://h:1/x") == "https://h:1"
    mid = host_machine_id()
    assert len(mid) == 16
    assert int(mid, 16) >= 0
    assert host_machine_id() == mid
