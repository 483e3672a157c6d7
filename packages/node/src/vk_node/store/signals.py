"""Commit notifications: who must wake up after a write transaction commits.

The outbox marks the writer connection when it appends an op (:func:`mark_enqueued`); after
``COMMIT`` the :class:`~vk_node.store.db.Store` takes the mark (:func:`take_enqueued`) and calls
its outbox listeners, so the hive link's sender pushes new ops right away without polling. A
rolled-back transaction drops the mark: nothing new is visible.
"""

from __future__ import annotations

import weakref

import aiosqlite

__all__ = ["mark_enqueued", "take_enqueued"]

_enqueued: weakref.WeakSet[aiosqlite.Connection] = weakref.WeakSet()


def mark_enqueued(conn: aiosqlite.Connection) -> None:
    """The open transaction on ``conn`` appended at least one outbox op."""
    _enqueued.add(conn)


def take_enqueued(conn: aiosqlite.Connection) -> bool:
    """Whether the transaction that just ended on ``conn`` appended ops; clears the mark."""
    if conn in _enqueued:
        _enqueued.discard(conn)
        return True
    return False
