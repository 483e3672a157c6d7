"""structlog setup: one event name per line with key/value fields; JSON or console; no secrets."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "mask_secret"]

_SECRET_KEYS = frozenset(
    {
        "api_key",
        "api_token",
        "token",
        "secret",
        "authorization",
        "password",
        "access_token",
        "refresh_token",
    }
)


def mask_secret(value: object) -> str:
    """A secret shown as its first 3 and last 4 characters (``vk_…abcd``); short ones fully hidden.

    An empty value stays empty so "not set" remains visible.
    """
    text = "" if value is None else str(value)
    if not text:
        return ""
    if len(text) < 12:
        return "****"
    return f"{text[:3]}…{text[-4:]}"


def _mask_processor(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS and event_dict[key]:
            event_dict[key] = mask_secret(event_dict[key])
    return event_dict


def _shared_processors() -> list[Any]:
    """What every line goes through, from structlog and from the standard library alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_processor,
    ]


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Configure structlog for this process, and route the standard library's records (uvicorn's
    ``uvicorn.error``, websockets, ...) through the same processors and renderer, so with ``json``
    every line on stderr is one JSON object with ``event``, ``level`` and ``timestamp``."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    # At debug level websockets (and uvicorn's WebSocket protocol, on ``uvicorn.error``) dump
    # handshake headers and frames, the node's ``auth`` with its API key included: never below info.
    for name in ("websockets", "uvicorn.error"):
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    # aiosqlite logs every call at debug with its SQL and parameters (run output, task text,
    # prompts): never below warning.
    logging.getLogger("aiosqlite").setLevel(max(numeric, logging.WARNING))
