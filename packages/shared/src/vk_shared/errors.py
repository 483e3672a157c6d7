"""The domain errors of vk-swarm: what went wrong, said without HTTP.

Stores, services and the sync layers of both services raise these (or a service's own subclasses
in ``vk_hive.errors`` / ``vk_node.errors``). Each class carries a stable machine-readable
``code`` (snake case, never renamed or reused) and each instance a ``detail`` for people; an
instance may narrow the code (``InvalidInput(..., code="json_too_deep")``). Nothing here knows a
status code: each application maps the classes to HTTP in one module at its edge
(``vk_hive.api.problems``, ``vk_node.api.problems``) and answers with the RFC 9457 body of
:mod:`vk_shared.problems`. Details never contain secrets.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "VersionConflict",
]


class DomainError(Exception):
    """Base of every error raised on purpose; ``code`` names the kind for machines."""

    code: ClassVar[str] = "invalid_input"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]  # an instance may narrow its class's code


class InvalidInput(DomainError):
    """The input cannot be applied as given (malformed, out of range, merge with itself...)."""

    code = "invalid_input"


class Unauthorized(DomainError):
    """No credentials, or credentials that prove nothing (unknown, expired, revoked)."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Known caller, not allowed to do this (not a member, not an admin, blocked key)."""

    code = "forbidden"


class NotFound(DomainError):
    """The addressed record does not exist, is deleted, or is not visible to the caller."""

    code = "not_found"


class Conflict(DomainError):
    """The write contradicts the current state (a uniqueness rule, an existing link...)."""

    code = "conflict"


class VersionConflict(Conflict):
    """Optimistic concurrency: the expected version is not the current one."""

    code = "version_conflict"


class InvalidTransition(Conflict):
    """A status or state change the state machine does not allow from the current state."""

    code = "invalid_transition"


class Unprocessable(DomainError):
    """Well-formed input the domain refuses (an unknown parent, an executor this node cannot
    run, a path that is not a git repository)."""

    code = "unprocessable"


class PayloadTooLarge(DomainError):
    """The input is larger than a limit allows."""

    code = "payload_too_large"


class Unavailable(DomainError):
    """A dependency (the database, an identity provider) cannot answer now; retry later."""

    code = "unavailable"
