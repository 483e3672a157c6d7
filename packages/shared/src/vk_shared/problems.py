"""RFC 9457 problem details: the body of every error answer of the hive and the node.

``Content-Type: application/problem+json``; the members::

    {"type": "urn:vk-swarm:problem:not_found", "title": "Not found", "status": 404,
     "detail": "task 0c2f... not found", "code": "not_found"}

- ``code`` — stable and machine-readable (``not_found``, ``conflict``, ``validation_failed``,
  ``invalid_transition``...); a client branches on it, never on ``detail``. Codes are never renamed
  or reused; new ones may appear.
- ``type`` — the code as a URI (``urn:vk-swarm:problem:<code>``); ``title`` — the same for every
  occurrence of a code; ``status`` — the HTTP status, repeated; ``detail`` — this occurrence, for
  people, at most 500 characters and never a secret.

This module is framework-free (the node's ASGI guard and the hive's gateway write problems
without Litestar); each application's mapping from exceptions to problems lives in its
``api/problems.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final

import msgspec

from vk_shared.jsoncheck import INVALID_UTF8, decode_error_detail, too_deep

__all__ = [
    "MEDIA_TYPE",
    "TYPE_PREFIX",
    "Problem",
    "clip",
    "code_for_status",
    "encode",
    "exception_arguments",
    "for_decoding_error",
    "for_status",
    "for_validation",
    "problem",
    "raised_while_decoding_body",
    "title_of",
    "validation_detail",
]

MEDIA_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:vk-swarm:problem:"
MAX_DETAIL: Final = 500

_TITLES: Final[Mapping[str, str]] = {
    "invalid_input": "Invalid input",
    "invalid_json": "Invalid JSON body",
    "json_too_deep": "JSON nested too deeply",
    "validation_failed": "Validation failed",
    "unauthorized": "Authentication required",
    "forbidden": "Forbidden",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "conflict": "Conflict",
    "version_conflict": "Version conflict",
    "invalid_transition": "Invalid transition",
    "already_assigned": "Already assigned",
    "link_exists": "Already linked",
    "payload_too_large": "Payload too large",
    "unsupported_media_type": "Unsupported media type",
    "misdirected_request": "Misdirected request",
    "unprocessable": "Unprocessable",
    "executor_unavailable": "Executor unavailable",
    "rate_limited": "Too many requests",
    "internal_error": "Internal server error",
    "not_implemented": "Not implemented",
    "unavailable": "Service unavailable",
}


_BY_STATUS: Final[Mapping[int, str]] = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


def code_for_status(status: int) -> str:
    """The code of an answer that only has a status (a framework's own 404, 405, 413...)."""
    return _BY_STATUS.get(status) or ("internal_error" if status >= 500 else "invalid_input")


class Problem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An RFC 9457 problem details object with the ``code`` extension member."""

    type: str
    """``urn:vk-swarm:problem:<code>``."""
    title: str
    """A short summary of the kind of problem (the same for every occurrence of ``code``)."""
    status: int
    """The HTTP status code of the answer."""
    detail: str
    """What went wrong this time, for people."""
    code: str
    """Stable, machine-readable: what a client branches on."""


def title_of(code: str) -> str:
    """The title of ``code`` (its words, capitalised, for a code without a registered title)."""
    return _TITLES.get(code) or code.replace("_", " ").capitalize()


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """Details never echo unbounded input back."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem(status: int, code: str, detail: str) -> Problem:
    return Problem(
        type=TYPE_PREFIX + code, title=title_of(code), status=status, detail=clip(detail), code=code
    )


def exception_arguments(found: Problem) -> dict[str, Any]:
    """Keyword arguments of Litestar's ``ProblemDetailsException`` (whose ``to_response`` writes
    this module's body) for ``found``; kept here so neither application spells them out."""
    return {
        "status_code": found.status,
        "detail": found.detail,
        "type_": found.type,
        "title": found.title,
        "extra": {"code": found.code},
    }


def encode(status: int, code: str, detail: str) -> bytes:
    """The JSON body of a problem answer."""
    return msgspec.json.encode(problem(status, code, detail))


def for_status(status: int, detail: str, *, body_did_not_decode: bool = False) -> Problem:
    """The problem of a framework's own error that has only a status and a message (an unknown
    route, a method not allowed, a body over the limit, a body that did not decode)."""
    if body_did_not_decode:
        return problem(400, "invalid_json", decode_error_detail(detail))
    return problem(status, code_for_status(status), detail)


def for_validation(message: str, extra: object) -> Problem:
    """The problem of input that decoded but failed the framework's validation."""
    return problem(400, "validation_failed", validation_detail(message, extra))


def for_decoding_error(exc: RecursionError | UnicodeDecodeError) -> Problem | None:
    """A body nested too deeply for the decoder or not UTF-8 is the caller's input (400); None
    when ``exc`` was raised anywhere else (our bug)."""
    if not raised_while_decoding_body(exc):
        return None
    if isinstance(exc, RecursionError):
        return problem(400, "json_too_deep", too_deep())
    return problem(400, "invalid_json", INVALID_UTF8)


def validation_detail(base: str, extra: object) -> str:
    """One readable line from a framework's list of validation errors (``extra``: dicts with
    ``key``, ``message`` and ``source``); at most five are named."""
    parts: list[str] = []
    items: Iterable[Any] = extra if isinstance(extra, list) else ()
    for item in list(items)[:5]:
        if not isinstance(item, dict):
            continue
        key, message, source = item.get("key"), str(item.get("message")), item.get("source")
        kind = str(getattr(source, "value", source) or "")
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
        return clip("Invalid request: " + "; ".join(parts))
    return clip(base or "Invalid request")


_DECODERS: Final = frozenset({"Request.json", "Request.msgpack"})
_REQUEST_MODULE: Final = "litestar.connection.request"


def raised_while_decoding_body(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while the web framework decoded the request body (so it is
    the caller's input, not a bug of ours)."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_qualname in _DECODERS and (
            frame.f_globals.get("__name__") == _REQUEST_MODULE
        ):
            return True
        tb = tb.tb_next
    return False
