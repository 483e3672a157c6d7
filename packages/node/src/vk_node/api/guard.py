"""Who may drive the node over HTTP: allowed hosts, cross-site requests, JSON bodies, the token.

The node's API controls a machine (it creates projects on any path, runs their scripts and coding
agents), and any web page the user opens can send requests to ``127.0.0.1:3000``. Every HTTP
request and WebSocket handshake passes these checks, in this order, before routing:

1. **Allowed hosts** (DNS rebinding) — the ``Host`` header must name a loopback host
   (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``[::1]``; any port), the host of
   ``VK_NODE_PUBLIC_URL``, or the bind address when ``VK_NODE_HOST`` is a specific address.
   Anything else, a malformed ``Host`` or none at all: **421**.
2. **Cross-site** — a state-changing request (``POST``/``PUT``/``PATCH``/``DELETE``) and every
   WebSocket handshake is refused (**403**) when its ``Origin`` names a host that is not allowed
   (``Origin: null`` included), or, without ``Origin``, when its ``Referer`` does, or when it says
   ``Sec-Fetch-Site: cross-site``. A request with neither header (curl, the CLI) passes.
3. **Token** — when ``VK_NODE_API_TOKEN`` is set, every ``/api`` request and WebSocket handshake
   except ``GET /api/health`` needs ``Authorization: Bearer <token>`` (compared in constant
   time): **401** with ``WWW-Authenticate: Bearer`` otherwise. A browser cannot set headers on
   a WebSocket handshake, so a handshake (only a handshake, never an HTTP request) may carry the
   token instead as one of its offered subprotocols: ``Sec-WebSocket-Protocol: vk-logs,
   vk-token.<token as unpadded base64url>`` (:func:`token_subprotocol`; base64url because a
   subprotocol must be an HTTP token and API tokens may hold ``/``, ``+`` or ``=``). The server
   never selects that value (it answers with ``vk-logs``), so the token is not echoed back; the
   header is not logged. Cookies are never accepted for ``/api``: a cross-site page could make
   the browser send them.
4. **JSON bodies** — an ``/api`` ``POST``/``PUT``/``PATCH`` carrying a body must declare
   ``application/json`` (or a ``+json`` type): **415** otherwise, so a page cannot send a
   "simple" cross-site form or ``text/plain`` request that skips the browser's preflight.
   One exception: ``POST /api/images`` takes an image's raw bytes, so on that path the body may
   also declare ``image/png``, ``image/jpeg``, ``image/gif`` or ``image/webp``. None of these is a
   CORS-safelisted type (a page's ``fetch`` with one is preflighted, and the node answers no
   preflight), a form cannot send one, and check 2 has already refused a foreign ``Origin``.

A refused request reaches no handler: nothing is read from its body, nothing is created or changed.
Refusals are RFC 9457 problem details (:mod:`vk_shared.problems`) like every other error of the
node, with the codes ``misdirected_request``, ``forbidden``, ``unauthorized`` and
``unsupported_media_type``.

:class:`AccessPolicy` decides without I/O (unit-tested on its own); :class:`RequestGuard` is the
ASGI layer that applies it to the whole application.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from vk_node.services.images import MEDIA_TYPES as IMAGE_MEDIA_TYPES
from vk_node.settings import ENV_NAMES, NodeSettings, SettingsError
from vk_shared import problems

__all__ = [
    "TOKEN_PROTOCOL_PREFIX",
    "AccessPolicy",
    "Refusal",
    "RequestGuard",
    "is_loopback_host",
    "require_token_when_exposed",
    "token_subprotocol",
]

log = structlog.get_logger("vk_node.api.guard")

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_HOST_RE = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\s:/?#@\[\]\\]+))(?::(?P<port>[0-9]{1,5}))?$"
)
_API = "/api"
_HEALTH = "/api/health"
_IMAGES = "/api/images"
TOKEN_PROTOCOL_PREFIX = "vk-token."  # noqa: S105 (a prefix, not a secret)
"""A WebSocket subprotocol starting so carries the API token (see the module docstring)."""


def token_subprotocol(token: str) -> str:
    """The subprotocol value that carries ``token`` on a WebSocket handshake:
    ``vk-token.`` + the token's UTF-8 bytes in unpadded base64url."""
    encoded = base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode("ascii")
    return TOKEN_PROTOCOL_PREFIX + encoded


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: its status, a detail for the body, extra response headers."""

    status: int
    detail: str
    reason: str
    """A short machine-readable word for the log line (``host``, ``origin``, ``token``, ...)."""
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def code(self) -> str:
        """The problem's code: ``misdirected_request``, ``forbidden``, ``unauthorized``,
        ``unsupported_media_type``."""
        return problems.code_for_status(self.status)


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _normalize(host: str) -> str:
    """Lower-case; IP addresses in their canonical spelling (``::1``, ``127.0.0.1``)."""
    host = host.strip().lower()
    ip = _ip(host)
    return host if ip is None else str(ip)


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost``, an address of 127.0.0.0/8 or ``::1`` (no brackets, no
    port)."""
    name = _normalize(host.strip("[]"))
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    return ip is not None and ip.is_loopback


def _is_wildcard(bind: str) -> bool:
    """``0.0.0.0``, ``::`` (all interfaces): a bind address that names no host."""
    name = bind.strip().strip("[]")
    ip = _ip(name)
    return name in ("", "*") or (ip is not None and ip.is_unspecified)


def require_token_when_exposed(settings: NodeSettings) -> None:
    """:class:`SettingsError` when the node would listen on a non-loopback address (``0.0.0.0``,
    a LAN address) without ``VK_NODE_API_TOKEN``: anyone on that network could drive it."""
    if settings.api_token or is_loopback_host(settings.host):
        return
    raise SettingsError(
        f"{ENV_NAMES['api_token']} is required when {ENV_NAMES['host']} ({settings.host!r}) is "
        "not a loopback address"
    )


def _host_of_header(value: str) -> str | None:
    """The host of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``); None if malformed."""
    match = _HOST_RE.match(value.strip())
    if match is None:
        return None
    port = match.group("port")
    if port is not None and int(port) > 65535:
        return None
    v6 = match.group("v6")
    if v6 is not None:
        try:
            return str(ipaddress.IPv6Address(v6))
        except ValueError:
            return None
    return _normalize(match.group("name"))


def _host_of_url(value: str) -> str | None:
    """The host of an ``Origin`` or ``Referer`` URL; None for ``null`` and anything unparsable."""
    try:
        host = urlsplit(value.strip()).hostname
    except ValueError:
        return None
    return _normalize(host) if host else None


@dataclass(frozen=True)
class AccessPolicy:
    """The checks of the module docstring for one node (built from its settings)."""

    extra_hosts: frozenset[str] = frozenset()
    """Allowed besides the loopback names: the public URL's host, a specific bind address."""
    token: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> AccessPolicy:
        hosts: set[str] = set()
        if settings.public_url:
            public = _host_of_url(settings.public_url)
            if public:
                hosts.add(public)
        if not _is_wildcard(settings.host):
            hosts.add(_normalize(settings.host.strip("[]")))
        return cls(extra_hosts=frozenset(hosts), token=settings.api_token)

    def host_allowed(self, host: str) -> bool:
        return host in self.extra_hosts or is_loopback_host(host)

    def check(
        self, *, method: str, path: str, headers: Mapping[str, list[str]], websocket: bool = False
    ) -> Refusal | None:
        """``None`` when the request may proceed; else why not. ``headers`` maps lower-case
        names to their values in order."""
        return (
            self._check_host(headers)
            or self._check_cross_site(method, headers, websocket)
            or self._check_token(method, path, headers, websocket)
            or (None if websocket else self._check_body(method, path, headers))
        )

    def _check_host(self, headers: Mapping[str, list[str]]) -> Refusal | None:
        values = headers.get("host", [])
        if len(values) != 1:
            return Refusal(421, "The request has no Host header (or more than one)", "host")
        host = _host_of_header(values[0])
        if host is None or not self.host_allowed(host):
            return Refusal(
                421,
                f"Host {_clip(values[0])!r} is not served by this node: use localhost, a loopback "
                "address or the host of VK_NODE_PUBLIC_URL",
                "host",
            )
        return None

    def _foreign(self, url: str) -> bool:
        host = _host_of_url(url)
        return host is None or not self.host_allowed(host)

    def _check_cross_site(
        self, method: str, headers: Mapping[str, list[str]], websocket: bool
    ) -> Refusal | None:
        if not websocket and method not in _STATE_CHANGING:
            return None
        origins = headers.get("origin", [])
        if origins:
            if any(self._foreign(origin) for origin in origins):
                return Refusal(
                    403,
                    f"Cross-site request refused: Origin {_clip(origins[0])!r} is not this node",
                    "origin",
                )
        elif any(self._foreign(referer) for referer in headers.get("referer", [])):
            return Refusal(
                403, "Cross-site request refused: the Referer is not this node", "referer"
            )
        if any(v.strip().lower() == "cross-site" for v in headers.get("sec-fetch-site", [])):
            return Refusal(403, "Cross-site request refused (Sec-Fetch-Site: cross-site)", "fetch")
        return None

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is this node's API token (constant time); False without one."""
        return bool(self.token) and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.token.encode()
        )

    def _check_token(
        self, method: str, path: str, headers: Mapping[str, list[str]], websocket: bool = False
    ) -> Refusal | None:
        if not self.token or not _under_api(path) or (method == "GET" and path == _HEALTH):
            return None
        values = headers.get("authorization", [])
        if len(values) == 1:
            scheme, _, given = values[0].strip().partition(" ")
            if scheme.lower() == "bearer" and self.token_matches(given.strip()):
                return None
        if websocket and self._subprotocol_token(headers):
            return None
        return Refusal(
            401,
            "This node's API needs Authorization: Bearer <VK_NODE_API_TOKEN>",
            "token",
            (("www-authenticate", 'Bearer realm="vk-node"'),),
        )

    def _subprotocol_token(self, headers: Mapping[str, list[str]]) -> bool:
        """Whether a handshake offers exactly one ``vk-token.`` subprotocol and it carries the
        token."""
        offered = [
            item.strip()
            for value in headers.get("sec-websocket-protocol", [])
            for item in value.split(",")
        ]
        carried = [item for item in offered if item.startswith(TOKEN_PROTOCOL_PREFIX)]
        expected = token_subprotocol(self.token).encode()
        return len(carried) == 1 and hmac.compare_digest(
            carried[0].encode("utf-8", "surrogateescape"), expected
        )

    def _check_body(
        self, method: str, path: str, headers: Mapping[str, list[str]]
    ) -> Refusal | None:
        if method not in _WITH_BODY or not _under_api(path) or not _has_body(headers):
            return None
        types = headers.get("content-type", [])
        media = types[0].partition(";")[0].strip().lower() if len(types) == 1 else ""
        if media == "application/json" or ("/" in media and media.endswith("+json")):
            return None
        if path.rstrip("/") == _IMAGES and media in IMAGE_MEDIA_TYPES:  # routing: 405 but POST
            return None
        return Refusal(
            415,
            f"The request body must be JSON (Content-Type: application/json), "
            f"not {_clip(media) or 'missing'!r}",
            "content_type",
        )


def _under_api(path: str) -> bool:
    return path == _API or path.startswith(_API + "/")


def _has_body(headers: Mapping[str, list[str]]) -> bool:
    if headers.get("transfer-encoding"):
        return True
    lengths = headers.get("content-length", [])
    return any(value.strip() != "0" for value in lengths)


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


class RequestGuard:
    """ASGI wrapper applying an :class:`AccessPolicy` to every HTTP request and WebSocket
    handshake of the application it wraps (lifespan events pass through untouched)."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            websocket = kind == ScopeType.WEBSOCKET
            refusal = self.policy.check(
                method="GET" if websocket else str(scope.get("method", "GET")),
                path=scope.get("path", ""),
                headers=_headers(scope.get("headers", ())),
                websocket=websocket,
            )
            if refusal is not None:
                log.info(
                    "request.refused",
                    status=refusal.status,
                    reason=refusal.reason,
                    method=scope.get("method", "WEBSOCKET"),
                    path=_clip(scope.get("path", "")),
                )
                await _refuse(scope, send, refusal)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Any, refusal: Refusal) -> None:
    body = problems.encode(refusal.status, refusal.code, refusal.detail)
    headers = [
        (b"content-type", problems.MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in refusal.headers),
    ]
    if scope["type"] == ScopeType.HTTP:
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in (scope.get("extensions") or {}):
        # The handshake is answered with the HTTP status and body (never accepted).
        await send(
            {"type": "websocket.http.response.start", "status": refusal.status, "headers": headers}
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # a server without the denial extension answers the close with 403
        await send({"type": "websocket.close", "code": 1008, "reason": refusal.detail[:120]})
