"""The node's side of the node ↔ hive control channel (DESIGN.md §2-6, docs/sync-protocol.md).

:class:`~vk_node.link.client.HiveLink` owns everything and wires it: the connection loop with
reconnects (:mod:`.connection`), one session at a time — handshake, receive and dispatch,
heartbeats, digests (:mod:`.session`) —, what hive messages change in the store (:mod:`.inbound`,
applying with :mod:`.activity`), the hive's acks and rejections (:mod:`.acks`), the outbox sender
(:mod:`.sender`), and hive assignments and their leases (:mod:`.assignments`). Protocol decisions
live in small modules without I/O (:mod:`.backoff`, :mod:`.window`, :mod:`.leases`,
:mod:`.state`), driven by an injectable :class:`~vk_node.link.clock.Clock`.
"""

from vk_node.link.client import HiveLink
from vk_node.link.clock import Clock, SystemClock
from vk_node.link.state import LinkStatus

__all__ = ["Clock", "HiveLink", "LinkStatus", "SystemClock"]
