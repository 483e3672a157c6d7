"""The link's connection loop: one WebSocket at a time to ``<hive>/v1/nodes/ws``, failing over
between the configured hive URLs and reconnecting with backoff. Each socket is handed to the
:class:`~vk_node.link.session.SessionRunner`; the loop keeps
:class:`~vk_node.link.state.LinkState` current across sessions.

Several hive URLs (``VK_HIVE_URL=ws://a:9000,ws://b:9000``, DESIGN.md §10) are tried in
*rounds*: one attempt per URL, in order. A failed connect, or a session that ended before it was
healthy (established and lasting longer than the first backoff delay), moves on to the next URL
at once — a dead hive costs no wait while another one is up. Only when a whole round went by
without a healthy session does the loop wait, for our own
:class:`~vk_node.link.backoff.Backoff`'s delay (from settings, jitter included), so the backoff
grows per round, not per URL. When a healthy session ends, the next round starts immediately
with the URL that served it — reconnecting once to the same hive first keeps the nodes of a hive
that merely restarted — then the others in order; a refused key ends the round and waits the
maximum delay (the hives share one database, so the next one would refuse it as well). A single
URL is the one-entry case of the same rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable
from uuid import uuid4

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from vk_node import __version__
from vk_node.link.backoff import Backoff
from vk_node.link.clock import Clock
from vk_node.link.identity import ws_url
from vk_node.link.session import SessionRunner
from vk_node.link.state import LinkState, LinkStats
from vk_node.settings import NodeSettings
from vk_shared.protocol import MAX_FRAME_BYTES, SUBPROTOCOLS

__all__ = ["ConnectionLoop", "Outcome", "Rotation"]

log = structlog.get_logger("vk_node.link")


class Outcome(enum.Enum):
    """How one attempt on one hive URL ended."""

    FAILED = "failed"
    """No connection, or a session that ended before it was healthy: try the next URL."""
    HEALTHY = "healthy"
    """A session was established and lasted: start a new round with this URL, no wait."""
    AUTH_REFUSED = "auth_refused"
    """The hive refused the key: end the round, wait the maximum delay."""


class Rotation:
    """The order of the hive URLs in a round (no I/O): it starts with the URL whose session was
    last healthy (the first one configured until then) and goes on in configured order."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        if not urls:
            raise ValueError("no hive URL")
        self.urls = urls
        self._start = 0

    def round(self) -> tuple[str, ...]:
        return self.urls[self._start :] + self.urls[: self._start]

    def held(self, url: str) -> None:
        """A healthy session ran on ``url``: the next round starts with it."""
        self._start = self.urls.index(url)


class ConnectionLoop:
    def __init__(
        self,
        settings: NodeSettings,
        clock: Clock,
        *,
        state: LinkState,
        stats: LinkStats,
        backoff: Backoff,
        sessions: SessionRunner,
        on_change: Callable[[], None],
        on_hive: Callable[[str], None] = lambda url: None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._state = state
        self._stats = stats
        self._backoff = backoff
        self._sessions = sessions
        self._on_change = on_change
        self._on_hive = on_hive
        self._rotation = Rotation(settings.hive_urls)

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled; a failure of the loop itself is logged
        and the loop starts again after the longest backoff."""
        while True:
            try:
                await self._rounds()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self._backoff.auth_failure()
                self._state.disconnected(f"{type(exc).__name__}: {exc}", self._clock.wall(), delay)
                self._on_change()
                log.error("link.loop_failed", error=str(exc), retry_in_s=round(delay, 3))
                await self._clock.sleep(delay)

    async def _rounds(self) -> None:
        while True:
            outcome = Outcome.FAILED
            for url in self._rotation.round():
                outcome = await self._attempt(url)
                if outcome is not Outcome.FAILED:
                    break
            if outcome is Outcome.HEALTHY:
                continue
            if outcome is Outcome.AUTH_REFUSED:
                delay = self._backoff.auth_failure()
            else:
                delay = self._backoff.failure()
            self._state.disconnected(None, self._clock.wall(), delay)
            self._stats.backoff_waits += 1
            self._on_change()
            log.info(
                "link.round_failed",
                urls=len(self._rotation.urls),
                error=self._state.last_error,
                retry_in_s=round(delay, 3),
            )
            await self._clock.sleep(delay)

    async def _attempt(self, url: str) -> Outcome:
        """Connect to ``url`` and serve the session there until it ends."""
        self._state.connecting(url)
        self._on_hive(url)
        self._on_change()
        target = ws_url(url)
        log.info("link.connecting", url=target)
        try:
            ws = await self._connect(target)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            self._state.attempt_failed(error)
            self._on_change()
            log.warning("link.connect_failed", url=target, error=error)
            return Outcome.FAILED
        return await self._serve(url, ws)

    async def _serve(self, url: str, ws: ClientConnection) -> Outcome:
        """Run the session on ``ws`` (opened to ``url``) until it ends; how it went."""
        sessions_before = self._state.sessions
        started = self._clock.monotonic()
        connection_id = uuid4().hex[:16]
        try:
            with structlog.contextvars.bound_contextvars(connection_id=connection_id):
                ended = await self._sessions.run(ws)
        finally:
            structlog.contextvars.unbind_contextvars("node_id")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        duration = self._clock.monotonic() - started
        established = self._state.sessions > sessions_before
        self._state.attempt_failed(ended.error)
        self._on_change()
        log.info("link.disconnected", url=url, error=ended.error, session_s=round(duration, 3))
        if ended.auth_failed:
            return Outcome.AUTH_REFUSED
        if established and self._backoff.healthy(duration):
            self._backoff.reset()
            self._rotation.held(url)
            return Outcome.HEALTHY
        return Outcome.FAILED

    async def _connect(self, url: str) -> ClientConnection:
        s = self._settings
        return await connect(
            url,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            open_timeout=s.link_open_timeout_s,
            ping_interval=s.link_ping_interval_s,
            ping_timeout=s.link_ping_interval_s,
            close_timeout=2.0,
            max_size=MAX_FRAME_BYTES,
            compression=None,
            proxy=None,
            user_agent_header=f"vk-node/{__version__}",
        )
