"""Small builders of hive → node messages shared by the gateway modules."""

from __future__ import annotations

from vk_shared.wire import ErrorMessage

__all__ = ["error"]

MAX_MESSAGE = 4096
MAX_REF = 255


def error(code: str, message: str, ref: str | None = None) -> ErrorMessage:
    """An ``error`` message with its text cut to the wire limits."""
    return ErrorMessage(
        code=code, message=message[:MAX_MESSAGE], ref=ref[:MAX_REF] if ref else None
    )
