"""The link's connection loop: one WebSocket at a time to ``<hive>/v1/nodes/ws``, reconnecting
with backoff (``async for ws in connect(...)``; our own :class:`~vk_node.link.backoff.Backoff`
supplies the delays so they come from settings, jitter included, and auth failures wait the
maximum). Each socket is handed to the :class:`~vk_node.link.session.SessionRunner`; the loop
keeps :class:`~vk_node.link.state.LinkState` current across sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from uuid import uuid4

import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidURI
from websockets.typing import Subprotocol

from vk_node import __version__
from vk_node.link.backoff import Backoff
from vk_node.link.clock import Clock
from vk_node.link.identity import ws_url
from vk_node.link.session import SessionRunner
from vk_node.link.state import LinkState
from vk_node.settings import NodeSettings
from vk_shared.protocol import MAX_FRAME_BYTES, SUBPROTOCOLS

__all__ = ["ConnectionLoop"]

log = structlog.get_logger("vk_node.link")


class ConnectionLoop:
    def __init__(
        self,
        settings: NodeSettings,
        clock: Clock,
        *,
        state: LinkState,
        backoff: Backoff,
        sessions: SessionRunner,
        on_change: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._state = state
        self._backoff = backoff
        self._sessions = sessions
        self._on_change = on_change
        self._connect_error: str | None = None

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled; a failure of the loop itself is logged
        and the loop starts again after the longest backoff."""
        url = ws_url(self._settings.hive_url)
        while True:
            try:
                await self._connect_loop(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self._backoff.auth_failure()
                self._state.disconnected(f"{type(exc).__name__}: {exc}", self._clock.wall(), delay)
                self._on_change()
                log.error("link.loop_failed", error=str(exc), retry_in_s=round(delay, 3))
                await self._clock.sleep(delay)

    def _delays(self) -> Generator[float]:
        while True:
            delay = self._backoff.failure()
            self._state.disconnected(self._connect_error, self._clock.wall(), delay)
            self._on_change()
            yield delay

    def _connect_failed(self, exc: Exception) -> Exception | None:
        self._connect_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("link.connect_failed", error=self._connect_error)
        return exc if isinstance(exc, InvalidURI) else None

    async def _connect_loop(self, url: str) -> None:
        s = self._settings
        self._state.connecting()
        self._on_change()
        log.info("link.connecting", url=url)
        async for ws in connect(
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
            reconnect_delays=self._delays,
            process_exception=self._connect_failed,
        ):
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
            if ended.auth_failed:
                delay = self._backoff.auth_failure()
            else:
                delay = self._backoff.session_ended(duration)
            self._state.disconnected(ended.error, self._clock.wall(), delay)
            self._on_change()
            log.info(
                "link.disconnected",
                error=ended.error,
                session_s=round(duration, 3),
                retry_in_s=round(delay, 3),
            )
            await self._clock.sleep(delay)
            self._state.connecting()
            self._on_change()
