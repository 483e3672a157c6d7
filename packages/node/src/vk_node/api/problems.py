"""The node's HTTP edge for errors: every exception becomes an RFC 9457 problem, in one place.

Litestar's problem-details plugin answers; this module gives it the node's mapping (the most
specific class wins):

- domain errors (:mod:`vk_node.errors`) by :data:`STATUS`, their ``code`` as is;
- Litestar's own exceptions by status (an unknown route 404, 405, 413 over the body limit), a
  failed validation 400 ``validation_failed``, a body that did not decode 400 ``invalid_json``;
- a body nested too deeply for the decoder, or not UTF-8, 400; the same exceptions raised
  anywhere else are our bug (500 ``internal_error``);
- SQLite errors the services did not check first: a constraint is the caller's input (409 or
  422), a locked database 503, a value out of range 400.

The refusals of :mod:`vk_node.api.guard` (421, 403, 401, 415) come before Litestar and write the
same body with :func:`vk_shared.problems.encode`. Bad input of any kind is a 4xx, never a 500.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from vk_node.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    NotImplementedYet,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from vk_shared import problems
from vk_shared.problems import Problem

__all__ = ["STATUS", "plugin"]

log = structlog.get_logger("vk_node.api.problems")

STATUS: Mapping[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    Unprocessable: 422,
    NotImplementedYet: 501,
    Unavailable: 503,
}
"""The HTTP status of each kind of domain error (a subclass answers like its base; an
unlisted kind, such as an invalid outbox op, is 400)."""


def _answer(found: Problem, headers: Mapping[str, str] | None = None) -> ProblemDetailsException:
    given = dict(headers) if headers else None
    return ProblemDetailsException(**problems.exception_arguments(found), headers=given)


def _status(exc: DomainError) -> int:
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 400)


def _from_framework(exc: HTTPException) -> ProblemDetailsException:
    found = problems.for_status(
        exc.status_code,
        str(exc.detail),
        body_did_not_decode=isinstance(exc.__cause__, SerializationException),
    )
    return _answer(found, exc.headers)


def _integrity(exc: sqlite3.IntegrityError) -> ProblemDetailsException:
    message = str(exc)
    if "UNIQUE" in message:
        return _answer(problems.problem(409, "conflict", "Conflicts with an existing record"))
    if "FOREIGN KEY" in message:
        return _answer(problems.problem(409, "conflict", "Refers to a record that does not exist"))
    return _answer(problems.problem(422, "unprocessable", "Value rejected by a constraint"))


def _sqlite(exc: sqlite3.Error) -> ProblemDetailsException:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in message:
        return _answer(problems.problem(503, "unavailable", "Database busy, retry"))
    if isinstance(exc, sqlite3.DataError):
        return _answer(problems.problem(400, "invalid_input", "Value out of range"))
    log.error("request.database_error", error=type(exc).__name__, message=message)
    return _answer(problems.problem(500, "internal_error", "Database error"))


def _unexpected(exc: Exception) -> ProblemDetailsException:
    found = None
    if isinstance(exc, RecursionError | UnicodeDecodeError):
        found = problems.for_decoding_error(exc)
    if found is None:
        log.error("request.unhandled_error", error=type(exc).__name__, exc_info=exc)
        found = problems.problem(500, "internal_error", "Internal server error")
    return _answer(found)


_MAP: Mapping[type[Exception], Callable[[Any], ProblemDetailsException]] = {
    DomainError: lambda exc: _answer(problems.problem(_status(exc), exc.code, exc.detail)),
    ValidationException: lambda exc: _answer(problems.for_validation(str(exc.detail), exc.extra)),
    HTTPException: _from_framework,
    sqlite3.IntegrityError: _integrity,
    sqlite3.Error: _sqlite,
    OverflowError: lambda _: _answer(problems.problem(400, "invalid_input", "Value out of range")),
    RecursionError: _unexpected,
    UnicodeDecodeError: _unexpected,
    Exception: _unexpected,
}


def plugin() -> ProblemDetailsPlugin:
    """Litestar's problem-details plugin with the node's mapping."""
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=_MAP))
