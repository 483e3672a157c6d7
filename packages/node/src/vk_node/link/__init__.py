"""The node's side of the node ↔ hive control channel (DESIGN.md §2-6, docs/sync-protocol.md).

:class:`~vk_node.link.client.HiveLink` owns everything: the WebSocket session with reconnects
(:mod:`.client`), the outbox sender (:mod:`.sender`), hive assignments and their leases
(:mod:`.assignments`), and the application of hive activity, snapshots and digests
(:mod:`.activity`, :mod:`.sync`). Protocol decisions live in small modules without I/O
(:mod:`.backoff`, :mod:`.window`, :mod:`.leases`, :mod:`.state`), driven by an injectable
:class:`~vk_node.link.clock.Clock`.
"""

from vk_node.link.client import HiveLink
from vk_node.link.clock import Clock, SystemClock
from vk_node.link.state import LinkStatus

__all__ = ["Clock", "HiveLink", "LinkStatus", "SystemClock"]
