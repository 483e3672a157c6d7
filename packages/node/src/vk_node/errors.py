"""Domain errors of the node application and their ONE mapping to HTTP responses.

Every error body is JSON ``{"status_code": int, "detail": str}``. Bad input of any kind (malformed
or too deeply nested JSON, wrong types, invalid UUIDs, unknown enum values, oversized strings, NUL
bytes, unknown ids) is a 4xx, never a 500.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.types import ExceptionHandlersMap

from vk_node.store import errors as store_errors
from vk_shared.jsoncheck import INVALID_UTF8, MAX_DEPTH, decode_error_detail

__all__ = [
    "BadRequest",
    "Conflict",
    "DomainError",
    "ExecutorUnavailable",
    "NotFound",
    "NotImplementedYet",
    "Unprocessable",
    "error_body",
    "error_response",
    "exception_handlers",
]

log = structlog.get_logger("vk_node.errors")


class DomainError(Exception):
    """Base of every application error that maps to an HTTP status."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(DomainError):
    status_code = 400


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Unprocessable(DomainError):
    status_code = 422


class ExecutorUnavailable(Unprocessable):
    """An attempt names an executor this node cannot run (not enabled, or its CLI not found)."""


class NotImplementedYet(DomainError):
    """An endpoint of the public contract whose behaviour a later part builds."""

    status_code = 501


def error_body(status_code: int, detail: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"status_code": status_code, "detail": detail}


def error_response(status_code: int, detail: str) -> Response[Any]:
    return Response(
        content=error_body(status_code, detail),
        status_code=status_code,
        media_type=MediaType.JSON,
    )


def _domain(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return error_response(exc.status_code, exc.detail)


_MAX_DETAIL = 500


def _clip(text: str) -> str:
    """Details never echo unbounded input back."""
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


_STORE_STATUS: dict[type[store_errors.StoreError], int] = {
    store_errors.NotFound: 404,
    store_errors.Conflict: 409,
    store_errors.InvalidTransition: 409,
}


def _store(_: Request[Any, Any, Any], exc: store_errors.StoreError) -> Response[Any]:
    status = next((code for cls, code in _STORE_STATUS.items() if isinstance(exc, cls)), 400)
    return error_response(status, _clip(str(exc) or type(exc).__name__))


def _validation_detail(exc: ValidationException) -> str:
    parts: list[str] = []
    if isinstance(exc.extra, list):
        for item in exc.extra[:5]:
            if not isinstance(item, dict):
                continue
            key, message, source = item.get("key"), str(item.get("message")), item.get("source")
            kind = getattr(source, "value", source) or ""
            if kind == "body" and message == "'data'":
                parts.append("a JSON request body is required")
            elif kind == "body" and key == "data":
                parts.append(f"body: {message}")
            elif kind == "body" and key:
                parts.append(f"body field {key!r}: {message}")
            elif kind and key:
                parts.append(f"{kind} parameter {key!r}: {message}")
            else:
                parts.append(f"{key}: {message}" if key else message)
    if parts:
        return _clip("Invalid request: " + "; ".join(parts))
    return _clip(str(exc.detail) or "Invalid request")


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    return error_response(400, _validation_detail(exc))


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = str(exc.detail)
    if isinstance(exc.__cause__, SerializationException):  # the body did not decode
        detail = decode_error_detail(detail)
    elif exc.status_code == 404 and detail == "Not Found":
        detail = f"Not found: {request.method} {_clip(request.url.path)} (no such route or id)"
    response = error_response(exc.status_code, _clip(detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _integrity(_: Request[Any, Any, Any], exc: sqlite3.IntegrityError) -> Response[Any]:
    # Safety net: a constraint the services did not check first is still the caller's input.
    message = str(exc)
    if "UNIQUE" in message:
        return error_response(409, "Conflicts with an existing record")
    if "FOREIGN KEY" in message:
        return error_response(409, "Refers to a record that does not exist")
    return error_response(422, "Value rejected by a constraint")


def _sqlite(_: Request[Any, Any, Any], exc: sqlite3.Error) -> Response[Any]:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in message:
        return error_response(503, "Database busy, retry")
    if isinstance(exc, sqlite3.DataError | OverflowError):
        return error_response(400, "Value out of range")
    log.error("request.database_error", error=type(exc).__name__, message=message)
    return error_response(500, "Database error")


def _overflow(_: Request[Any, Any, Any], exc: OverflowError) -> Response[Any]:
    return error_response(400, "Value out of range")


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


def exception_handlers(extra: ExceptionHandlersMap | None = None) -> ExceptionHandlersMap:
    """The mapping installed on the app (Litestar picks the most specific class)."""
    handlers: ExceptionHandlersMap = {
        DomainError: _domain,
        store_errors.StoreError: _store,
        ValidationException: _validation,
        HTTPException: _http,
        sqlite3.IntegrityError: _integrity,
        sqlite3.Error: _sqlite,
        OverflowError: _overflow,
        RecursionError: _recursion,
        UnicodeDecodeError: _bad_utf8,
        Exception: _internal,
    }
    handlers.update(extra or {})
    return handlers
