"""Domain errors of the node store. The API layer maps them to HTTP codes in one place."""

from __future__ import annotations

__all__ = ["Conflict", "InvalidOp", "InvalidTransition", "NotFound", "StoreError"]


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFound(StoreError):
    """The addressed row does not exist (or is not visible in the given scope)."""


class Conflict(StoreError):
    """The write contradicts existing data (a uniqueness rule, a stale version)."""


class InvalidTransition(StoreError):
    """A status or state change that is not allowed from the current state."""


class InvalidOp(StoreError):
    """A write whose outbox op would not be a valid wire payload; the write is not committed."""
