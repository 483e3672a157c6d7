"""Admission to the node control channel (vk_hive.gateway.admission), on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vk_hive.gateway.admission import Admission
from vk_hive.settings import HiveSettings
from vk_node.link.backoff import Backoff
from vk_node.settings import load_settings as load_node_settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class Socket:
    authenticated: bool = False


def _admission(clock: Clock, **overrides: float) -> Admission:
    params: dict[str, float] = {
        "rate_limit": 3,
        "rate_window_s": 30.0,
        "max_pending": 2,
        "pending_retry_s": 10.0,
    }
    params.update(overrides)
    return Admission(
        rate_limit=int(params["rate_limit"]),
        rate_window_s=params["rate_window_s"],
        max_pending=int(params["max_pending"]),
        pending_retry_s=params["pending_retry_s"],
        clock=clock,
    )


def test_over_the_pending_cap_a_socket_is_refused_503_without_spending_an_attempt() -> None:
    """Two sockets waiting for auth fill the cap: the next is refused (503, retry after the auth
    timeout) and that refusal costs its address no attempt."""
    clock = Clock()
    admission = _admission(clock, rate_limit=3)
    first, second = Socket(), Socket()
    for socket in (first, second):
        assert admission.check("10.0.0.1") is None
        admission.track(socket)
    refusal = admission.check("10.0.0.1")
    assert refusal is not None
    assert (refusal.status_code, refusal.retry_after_s) == (503, 10)
    first.authenticated = True  # an authenticated session leaves the count by itself
    assert admission.pending == 1
    assert admission.check("10.0.0.1") is None  # the third attempt of 10.0.0.1
    admission.forget(second)
    assert admission.pending == 0


def test_beyond_the_rate_an_address_is_refused_429_with_the_wait() -> None:
    """Three attempts in a burst, the fourth refused with 429 and the seconds until one comes
    back (30 s / 3); other addresses are not affected; the refused one is admitted after."""
    clock = Clock()
    admission = _admission(clock, max_pending=0)
    for _ in range(3):
        assert admission.check("10.0.0.1") is None
    refusal = admission.check("10.0.0.1")
    assert refusal is not None
    assert (refusal.status_code, refusal.retry_after_s) == (429, 10)
    assert "retry after 10 s" in refusal.message
    assert admission.check("10.0.0.2") is None
    clock.now += 10.0
    assert admission.check("10.0.0.1") is None


def test_a_limit_of_zero_disables_it() -> None:
    """rate_limit 0 and max_pending 0 admit everything."""
    admission = _admission(Clock(), rate_limit=0, max_pending=0)
    for _ in range(1000):
        assert admission.check("10.0.0.1") is None
        admission.track(Socket())


def test_nodes_reconnecting_with_the_node_default_backoff_are_never_refused(
    tmp_path: Path,
) -> None:
    """Default hive limits against the node's default backoff, worst cases: fifty nodes behind
    one address reconnecting at once after a hive restart; and for a day, a node whose every
    session ends just after its backoff resets, always drawing the shortest jittered delay."""
    node = load_node_settings(env={"HOME": str(tmp_path)}).settings
    clock = Clock()
    admission = Admission.from_settings(HiveSettings(), clock=clock)
    for _ in range(50):
        assert admission.check("198.51.100.7") is None
    clock.now += 3600.0
    backoff = Backoff(
        node.link_backoff_initial_s,
        node.link_backoff_max_s,
        jitter=node.link_backoff_jitter,
        rand=lambda: 1.0,
    )
    session_s = node.link_backoff_initial_s + 0.01  # long enough to reset the backoff
    end = clock.now + 24 * 3600
    attempts = 0
    while clock.now < end:
        assert admission.check("198.51.100.7") is None, f"refused after {attempts} attempts"
        attempts += 1
        clock.now += session_s + backoff.session_ended(session_s)
    assert attempts > 8000
