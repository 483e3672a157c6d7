"""Where a hive may send a delivery.

Organization admins choose webhook URLs, and the hive sends from inside its own network; so by
default (``webhook_allow_private_networks = false``) a delivery may only go to globally routable
addresses: every address the host resolves to is checked (loopback, private, link-local —
cloud metadata endpoints —, carrier-grade NAT, unspecified and reserved ranges are refused;
IPv4-mapped IPv6 addresses are judged as their IPv4 address). The check runs when a webhook is
saved (a literal address, or a name that resolves now) and again before every try, since a name
can change what it points to. The connection itself then resolves the name again, so a DNS
answer that changes between the check and the connect is not caught (an operator who needs that
closed routes the hive's outgoing traffic through an egress proxy).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["DestinationRefused", "check_destination"]


class DestinationRefused(ValueError):
    """The URL's host is (or resolves to) an address deliveries may not reach."""


_RESOLVE_TIMEOUT_S = 5.0

_HINT = (
    "deliveries to loopback, private and link-local addresses are off on this hive "
    "(VK_HIVE_WEBHOOK_ALLOW_PRIVATE_NETWORKS)"
)


def _judge(host: str, address: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        shown = host if host == address else f"{host} ({address})"
        raise DestinationRefused(f"{shown} is not a public address: {_HINT}")


async def check_destination(url: str, *, allow_private: bool, must_resolve: bool) -> None:
    """Raise :class:`DestinationRefused` when ``url``'s host is or resolves to a non-public
    address (nothing is checked when ``allow_private``). A name that does not resolve passes
    unless ``must_resolve`` (before a try: the try then fails with the resolution error)."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    try:
        _judge(host, host)
        return
    except ValueError as exc:
        if isinstance(exc, DestinationRefused):
            raise
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise DestinationRefused(f"{host} is not a public address: {_HINT}")
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        if must_resolve:
            reason = str(exc) or "timed out"
            raise DestinationRefused(f"{host} does not resolve: {reason}") from None
        return
    for info in infos:
        _judge(host, str(info[4][0]))
