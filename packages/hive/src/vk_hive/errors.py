"""Domain errors of the hive and their ONE mapping to HTTP responses.

Every error body is JSON ``{"status_code": int, "detail": str}``. Bad input of any kind (bad or
too deeply nested JSON, wrong types, invalid UUIDs, unknown enum values, oversized strings, NUL
bytes) is a 4xx, never a 500.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.types import ExceptionHandlersMap

from vk_hive.store.errors import StoreError
from vk_shared.jsoncheck import INVALID_UTF8, MAX_DEPTH, decode_error_detail

__all__ = [
    "BadRequest",
    "Conflict",
    "DomainError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "exception_handlers",
]

log = structlog.get_logger("vk_hive.errors")


class DomainError(Exception):
    """Base of every error that maps to an HTTP status."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class PayloadTooLarge(DomainError):
    status_code = 413


class Unprocessable(DomainError):
    status_code = 422


class ServiceUnavailable(DomainError):
    status_code = 503


def error_response(status_code: int, detail: str) -> Response[Any]:
    return Response(
        content={"status_code": status_code, "detail": detail},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers={"www-authenticate": "Bearer"} if status_code == 401 else None,
    )


def _domain(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return error_response(exc.status_code, exc.detail)


def _store(_: Request[Any, Any, Any], exc: StoreError) -> Response[Any]:
    return error_response(exc.status_code, exc.detail)


def _validation_detail(exc: ValidationException) -> str:
    parts: list[str] = []
    extra = exc.extra
    if isinstance(extra, list):
        for item in extra[:5]:
            if isinstance(item, dict):
                key = item.get("key")
                message = item.get("message")
                source = item.get("source")
                where = f"{source} {key}" if source and key else (key or "")
                parts.append(f"{where}: {message}" if where else str(message))
    base = str(exc.detail) or "Validation failed"
    return f"{base}: {'; '.join(parts)}" if parts else base


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    return error_response(400, _validation_detail(exc))


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = str(exc.detail)
    if isinstance(exc.__cause__, SerializationException):  # the body did not decode
        detail = decode_error_detail(detail)
    response = error_response(exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _database(_: Request[Any, Any, Any], exc: asyncpg.PostgresError) -> Response[Any]:
    # Safety net: input the controllers did not catch must still not surface as a 500.
    if isinstance(exc, asyncpg.UniqueViolationError):
        return error_response(409, "Conflicts with an existing record")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return error_response(409, "Refers to a record that does not exist")
    if isinstance(exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
        return error_response(400, "Invalid value")
    log.error("request.database_error", error=type(exc).__name__)
    return error_response(503, "Database error")


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("request.database_unreachable", error=type(exc).__name__)
    return error_response(503, "Database unavailable")


def _decoding_body(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while the framework decoded the request body."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_qualname in ("Request.json", "Request.msgpack") and (
            tb.tb_frame.f_globals.get("__name__") == "litestar.connection.request"
        ):
            return True
        tb = tb.tb_next
    return False


def _recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    # Safety net behind the depth check of ``reject_nul_bytes``: a body that still nests too
    # deeply for the decoder is the caller's input; any other RecursionError is our bug.
    if _decoding_body(exc):
        return error_response(400, f"JSON nested too deeply (limit {MAX_DEPTH} levels)")
    return _internal(request, exc)


def _bad_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    # msgspec before 0.23 raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 in a
    # string; the body guard refuses such bodies first, this keeps the answer the same anyway.
    if _decoding_body(exc):
        return error_response(400, INVALID_UTF8)
    return _internal(request, exc)


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request.unhandled_error", error=type(exc).__name__)
    return error_response(500, "Internal server error")


def exception_handlers() -> ExceptionHandlersMap:
    """The mapping installed on the app (most specific class wins)."""
    return {
        DomainError: _domain,
        StoreError: _store,
        ValidationException: _validation,
        HTTPException: _http,
        asyncpg.PostgresError: _database,
        asyncpg.InterfaceError: _unavailable,
        ConnectionError: _unavailable,
        OSError: _unavailable,
        RecursionError: _recursion,
        UnicodeDecodeError: _bad_utf8,
        Exception: _internal,
    }
