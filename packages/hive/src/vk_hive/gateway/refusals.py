"""Why the hive refuses a node op: one exception class per ``op_rejected`` code.

The plan (:mod:`.plan`) raises these; the code a node hears comes from the class, never from the
wording of a message. Errors the store raises while an op is written are translated by their type
(:func:`refusal_for`).
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from vk_hive.errors import DomainError, InvalidTransition, NotFound
from vk_shared.wire import LeaseRevoked, RejectCode

__all__ = [
    "EntityNotFound",
    "ForeignEntity",
    "IllegalStatusChange",
    "InvalidPayload",
    "NoActiveAssignment",
    "OpRefused",
    "ProjectNotLinked",
    "StaleFencingToken",
    "TextTooLong",
    "refusal_for",
]

DATABASE_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""What PostgreSQL raises for a value it will not store: the op is refused, not retried."""


class OpRefused(Exception):
    """A permanently invalid op: recorded, skipped, and answered with ``op_rejected{code}``
    (and ``lease_revoked`` when ``revoke`` is set)."""

    code: ClassVar[RejectCode]

    def __init__(self, reason: str, revoke: LeaseRevoked | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.revoke = revoke


class InvalidPayload(OpRefused):
    code = RejectCode.INVALID_PAYLOAD


class TextTooLong(OpRefused):
    code = RejectCode.TEXT_TOO_LONG


class EntityNotFound(OpRefused):
    """The op names a hive entity that does not exist, was deleted, or whose op was rejected."""

    code = RejectCode.NOT_FOUND


class ForeignEntity(OpRefused):
    """The op names an entity of another organization or another node."""

    code = RejectCode.FORBIDDEN


class ProjectNotLinked(OpRefused):
    code = RejectCode.PROJECT_NOT_LINKED


class IllegalStatusChange(OpRefused):
    code = RejectCode.ILLEGAL_TRANSITION


class StaleFencingToken(OpRefused):
    code = RejectCode.STALE_FENCING_TOKEN


class NoActiveAssignment(OpRefused):
    code = RejectCode.NO_ACTIVE_ASSIGNMENT


def refusal_for(exc: DomainError | asyncpg.PostgresError) -> OpRefused:
    """The refusal a store or database error met while writing an op stands for, by its type:
    the store's guards (transition under the row lock, an entity gone) and anything the database
    will not store."""
    if isinstance(exc, InvalidTransition):
        return IllegalStatusChange(exc.detail)
    if isinstance(exc, NotFound):
        return EntityNotFound(exc.detail)
    if isinstance(exc, DomainError):
        return InvalidPayload(exc.detail)
    return InvalidPayload(f"rejected by the database: {exc}")
