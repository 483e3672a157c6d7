"""The node's domain errors: the shared kinds of :mod:`vk_shared.errors` and the node's own.

The store, the services, the executor and the link raise these; none of them knows HTTP. The
REST edge maps them to problem details in :mod:`vk_node.api.problems`.
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
    "Conflict",
    "DomainError",
    "ExecutorUnavailable",
    "Forbidden",
    "InvalidInput",
    "InvalidOp",
    "InvalidTransition",
    "NotFound",
    "NotImplementedYet",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "VersionConflict",
]


class ExecutorUnavailable(Unprocessable):
    """An attempt names an executor this node cannot run (not enabled, or its CLI not found)."""

    code = "executor_unavailable"


class InvalidOp(DomainError):
    """A write whose outbox op would not be a valid wire payload; the write is not committed."""

    code = "invalid_op"


class NotImplementedYet(DomainError):
    """An endpoint of the public contract whose behaviour a later part builds."""

    code = "not_implemented"
