"""Run a service's real logging setup with stderr captured, and undo it afterwards.

``configure_logging`` of the node and of the hive change process-wide state (structlog's
configuration, the root handler, levels of named loggers); :func:`stderr_logs` records that state,
points ``sys.stderr`` at a buffer while ``configure()`` runs and the test logs, and restores
everything on exit."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Callable, Iterable, Iterator

import structlog

__all__ = ["stderr_logs"]


@contextlib.contextmanager
def stderr_logs(
    configure: Callable[[], None], loggers: Iterable[str] = ()
) -> Iterator[io.StringIO]:
    """Yield the buffer standing in for stderr after ``configure()``; ``loggers`` are the named
    loggers ``configure`` changes besides the root (their handlers, propagation and level are
    restored too)."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {
        name: (list(lg.handlers), lg.propagate, lg.level)
        for name in loggers
        for lg in [logging.getLogger(name)]
    }
    buffer = io.StringIO()
    previous_stderr = sys.stderr
    sys.stderr = buffer
    try:
        configure()
        yield buffer
    finally:
        sys.stderr = previous_stderr
        structlog.configure(**saved)
        root.handlers, root.level = handlers, level
        for name, (hs, propagate, lvl) in named.items():
            lg = logging.getLogger(name)
            lg.handlers, lg.propagate, lg.level = hs, propagate, lvl
