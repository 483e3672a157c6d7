"""The hive's domain errors: the shared kinds of :mod:`vk_shared.errors` and the hive's own.

Repositories, services, auth and the gateway raise these; none of them knows HTTP. The REST edge
maps them to problem details in :mod:`vk_hive.api.problems`; the gateway turns them into op
rejections.
"""

from __future__ import annotations

from vk_shared.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    Unprocessable,
    VersionConflict,
)

__all__ = [
    "AlreadyAssigned",
    "AttemptNotFound",
    "Conflict",
    "DomainError",
    "Forbidden",
    "InvalidInput",
    "InvalidTransition",
    "LinkAlreadyExists",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "VersionConflict",
]


class AttemptNotFound(NotFound):
    """An execution process names an attempt the hive has no mirror of (yet)."""


class AlreadyAssigned(Conflict):
    """The task already has an active assignment."""

    code = "already_assigned"


class LinkAlreadyExists(Conflict):
    """The node (or its local project) is already linked to a swarm project."""

    code = "link_exists"
