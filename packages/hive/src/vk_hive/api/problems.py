"""The hive's HTTP edge for errors: every exception becomes an RFC 9457 problem, in one place.

Litestar's problem-details plugin answers; this module gives it the hive's mapping (the most
specific class wins):

- domain errors (:mod:`vk_hive.errors`) by :data:`STATUS`, their ``code`` as is; a 401 carries
  ``WWW-Authenticate: Bearer``;
- Litestar's own exceptions by status (an unknown route 404, 405, 413 over the body limit), a
  failed validation 400 ``validation_failed``, a body that did not decode 400 ``invalid_json``;
- the auth rate limit 429 ``rate_limited`` with ``Retry-After`` (:mod:`vk_hive.api.ratelimit`);
- a body nested too deeply for the decoder, or not UTF-8, 400; the same exceptions raised
  anywhere else are our bug (500 ``internal_error``);
- database errors the controllers did not catch: a uniqueness or foreign-key violation is the
  caller's input (409), invalid data 400, an unreachable database 503.

Bad input of any kind is a 4xx, never a 500. :mod:`vk_hive.api.openapi` documents the problems
each route answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import structlog
from litestar.exceptions import (
    HTTPException,
    SerializationException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from vk_hive.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from vk_hive.limits import retry_after_s
from vk_shared import problems
from vk_shared.problems import Problem

__all__ = ["STATUS", "plugin", "raised"]

log = structlog.get_logger("vk_hive.api.problems")

STATUS: Mapping[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    Unprocessable: 422,
    Unavailable: 503,
}
"""The HTTP status of each kind of domain error (a subclass answers like its base)."""


def raised(found: Problem, headers: Mapping[str, str] | None = None) -> ProblemDetailsException:
    """``found`` as the exception Litestar's plugin answers with."""
    scheme = {"WWW-Authenticate": "Bearer"} if found.status == 401 else {}
    headers = {**scheme, **(headers or {})}
    return ProblemDetailsException(**problems.exception_arguments(found), headers=headers or None)


def _domain(exc: DomainError) -> ProblemDetailsException:
    status = next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 400)
    return raised(problems.problem(status, exc.code, exc.detail))


def _http(exc: HTTPException) -> ProblemDetailsException:
    undecodable = isinstance(exc.__cause__, SerializationException)
    found = problems.for_status(exc.status_code, str(exc.detail), body_did_not_decode=undecodable)
    return raised(found, exc.headers)


def _too_many(exc: TooManyRequestsException) -> ProblemDetailsException:
    headers = dict(exc.headers or {})
    try:
        wait = retry_after_s(float(headers.get("RateLimit-Reset", "1")))
    except ValueError:
        wait = 1
    headers["Retry-After"] = str(wait)
    detail = f"too many requests to the auth endpoints from this address; retry after {wait} s"
    return raised(problems.problem(429, "rate_limited", detail), headers)


def _database(exc: asyncpg.PostgresError) -> ProblemDetailsException:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return raised(problems.problem(409, "conflict", "Conflicts with an existing record"))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return raised(problems.problem(409, "conflict", "Refers to a record that does not exist"))
    if isinstance(exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
        return raised(problems.problem(400, "invalid_input", "Invalid value"))
    log.error("request.database_error", error=type(exc).__name__)
    return raised(problems.problem(503, "unavailable", "Database error"))


def _unreachable(exc: Exception) -> ProblemDetailsException:
    log.error("request.database_unreachable", error=type(exc).__name__)
    return raised(problems.problem(503, "unavailable", "Database unavailable"))


def _undecodable(exc: RecursionError | UnicodeDecodeError) -> ProblemDetailsException:
    found = problems.for_decoding_error(exc)
    return _internal(exc) if found is None else raised(found)


def _internal(exc: Exception) -> ProblemDetailsException:
    log.error("request.unhandled_error", error=type(exc).__name__, exc_info=exc)
    return raised(problems.problem(500, "internal_error", "Internal server error"))


_MAP: Mapping[type[Exception], Callable[[Any], ProblemDetailsException]] = {
    DomainError: _domain,
    ValidationException: lambda exc: raised(problems.for_validation(str(exc.detail), exc.extra)),
    HTTPException: _http,
    TooManyRequestsException: _too_many,
    asyncpg.PostgresError: _database,
    asyncpg.InterfaceError: _unreachable,
    ConnectionError: _unreachable,
    OSError: _unreachable,
    RecursionError: _undecodable,
    UnicodeDecodeError: _undecodable,
    Exception: _internal,
}


def plugin() -> ProblemDetailsPlugin:
    """Litestar's problem-details plugin with the hive's mapping."""
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=_MAP))
