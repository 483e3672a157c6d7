"""The hive's logging: structlog wired to the shared chain of :mod:`vk_shared.logkit` (JSON or
console, secrets masked), the standard library's records (uvicorn, asyncpg, ...) routed through
the same chain, and uvicorn's per-WebSocket lines dropped."""

from __future__ import annotations

import logging
import sys

import structlog

from vk_shared import logkit

__all__ = ["configure_logging"]


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Configure structlog for this process and route the standard library's records through
    the same processors, so with ``json`` every line on stderr is one JSON object with ``event``,
    ``level`` and ``timestamp``."""
    chain = logkit.line_processors(log_format, colors=sys.stderr.isatty())
    numeric = logkit.level_number(level)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *chain],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logkit.route_stdlib(
        chain,
        numeric,
        context=structlog.contextvars.get_contextvars,
        filters=[("uvicorn.error", _ConnectionChatter())],
    )


class _ConnectionChatter(logging.Filter):
    """Drops uvicorn's line per WebSocket accept/open/close: the gateway logs every session
    (``session.authenticated`` / ``session.disconnected`` with node and connection ids), and with
    a thousand nodes reconnecting these lines cost the event loop more than the sessions did."""

    _MESSAGES = frozenset(
        {'%s - "WebSocket %s" [accepted]', "connection open", "connection closed"}
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in self._MESSAGES)
