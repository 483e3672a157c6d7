"""Domain errors raised by the store's repositories.

Each carries ``status_code`` (the HTTP status a REST layer should answer with) so one mapping can
translate every store error; the messages never contain secrets.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every domain error the repositories raise."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(StoreError):
    """The request cannot be applied as given (merge with itself, text too long, cross-org...)."""

    status_code = 400


class NotFound(StoreError):
    """The entity does not exist (or is soft-deleted)."""

    status_code = 404


class AttemptNotFound(NotFound):
    """An execution process names an attempt the hive has no mirror of (yet)."""


class Conflict(StoreError):
    """The write conflicts with the current state."""

    status_code = 409


class VersionConflict(Conflict):
    """Optimistic concurrency: the expected version is not the current one."""


class AlreadyAssigned(Conflict):
    """The task already has an active assignment."""


class LinkAlreadyExists(Conflict):
    """The node (or its local project) is already linked to a swarm project."""


class IllegalTransition(Conflict):
    """A task status change the status machine of ``vk_shared.status`` does not allow."""
