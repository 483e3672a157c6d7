"""The node's logging: structlog wired to the shared chain of :mod:`vk_shared.logkit` (JSON or
console, secrets masked), the standard library's records (uvicorn, websockets, ...) routed through
the same chain, and the SQLite driver's call log kept off."""

from __future__ import annotations

import logging
import sys

import structlog

from vk_shared import logkit

__all__ = ["configure_logging"]

# aiosqlite logs every call at debug with its SQL and parameters (run output, task text, prompts).
_AT_LEAST = {"aiosqlite": logging.WARNING}


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
        chain, numeric, context=structlog.contextvars.get_contextvars, at_least=_AT_LEAST
    )
