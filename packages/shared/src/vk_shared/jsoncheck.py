"""Checks of untrusted JSON that msgspec does not make, or makes with an unclear message.

- **Nesting depth, before decoding.** msgspec decodes nested arrays and objects recursively and
  raises ``RecursionError`` near the interpreter's recursion limit; a body of 3,000 ``[``
  must be refused first, with a clear reason. :func:`nesting_exceeds` is iterative and, in the
  common case (fewer opening brackets than the limit), costs two ``bytes.count`` calls.
- **Lone UTF-16 surrogate escapes** (``"\\ud800"``): msgspec rejects them, but may call the
  input "truncated". :func:`lone_surrogate` finds them (escaped backslashes respected).
- **NUL characters** in decoded strings, which PostgreSQL text cannot store:
  :func:`contains_nul`, iterative.
- **Decode error messages** made readable for a client: :func:`decode_error_detail`; invalid
  UTF-8 is refused with one message whatever the msgspec release (before 0.23 msgspec raised a
  bare ``UnicodeDecodeError``).

- **JSON types, strictly.** The web framework converts a decoded body into the handler's type
  leniently (``0``/``1`` or ``"true"`` for a boolean, ``"5"`` for an integer), as it must for
  query strings. A JSON body is held to its JSON types instead: :func:`strict_body_problem`
  converts it into the handler's body type strictly and names the first field of a wrong type.
  UUIDs, datetimes and enums still come as JSON strings, and ``5.0`` is an integer as in JSON
  Schema (the OpenAPI documents), ``5.5`` is not.

Nothing here recurses, so no input can exhaust the stack. A REST request goes through
:func:`request_problem` (its URL, then its body with :func:`body_problem`) before any decoding,
then through :func:`strict_body_problem`: both services install :func:`refuse_bad_request` as the
``before_request`` hook of their routes.
"""

from __future__ import annotations

import re
import weakref
from array import array
from collections.abc import Awaitable, Mapping
from itertools import accumulate
from typing import Any, Final, Protocol

import msgspec

from vk_shared.errors import InvalidInput

__all__ = [
    "INVALID_UTF8",
    "MAX_DEPTH",
    "body_problem",
    "contains_nul",
    "decode_error_detail",
    "lone_surrogate",
    "nesting_exceeds",
    "refuse_bad_request",
    "refuse_bad_url",
    "request_problem",
    "strict_body_problem",
    "too_deep",
]

MAX_DEPTH: Final = 64
"""Deepest nesting of arrays/objects a REST body may have; real bodies nest two or three deep."""

# Outside strings: opening brackets become +1, closing ones -1, everything else is dropped.
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
# In text without escaped backslashes, every ``\\u`` is an escape. A lone surrogate is a high one
# not followed by a low one, or a low one not preceded by a high one. (The pattern starts with a
# literal, so the scan jumps from one ``\\u`` to the next at C speed.)
_LONE_SURROGATE: Final = re.compile(
    rb"\\u(?:[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|[dD][c-fC-F][0-9a-fA-F]{2}(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}))"
)
INVALID_UTF8: Final = "Invalid JSON body: Invalid UTF-8 encoded string"
"""The detail for a body that is not UTF-8 (msgspec's own wording since 0.23)."""
_ANY_PATH: Final = " - at `$[...]`"
_MALFORMED: Final = "JSON is malformed: "


def _unescaped(data: bytes) -> bytes:
    """``data`` without escaped backslashes and escaped quotes (left to right, as JSON pairs
    them): every remaining ``"`` opens or closes a string, every remaining ``\\u`` is an
    escape."""
    return data.replace(b"\\\\", b"").replace(b'\\"', b"")


def nesting_exceeds(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON ``data`` nests arrays/objects deeper than ``limit`` (brackets inside strings
    do not count). Malformed input gets an answer too; decoding then rejects it."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    outside_strings = b"".join(_unescaped(data).split(b'"')[::2])
    steps = outside_strings.translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0) > limit


def lone_surrogate(data: bytes) -> str | None:
    """The first ``\\uXXXX`` escape in JSON ``data`` that is a UTF-16 surrogate without its
    partner, or None."""
    if b"\\ud" not in data and b"\\uD" not in data:
        return None
    match = _LONE_SURROGATE.search(_unescaped(data))
    return None if match is None else match[0].decode("ascii")


def contains_nul(value: object) -> bool:
    """Whether any string (key or value) of decoded JSON holds a NUL character."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def decode_error_detail(message: str) -> str:
    """A client-facing detail for msgspec's message about a body it could not decode."""
    if message.endswith(_ANY_PATH):  # the position inside an untyped value: says nothing
        message = message[: -len(_ANY_PATH)]
    message = message.removeprefix(_MALFORMED)
    if message == "Input data was truncated":
        message = "the JSON ends before it is complete"
    return f"Invalid JSON body: {message}"


def too_deep(max_depth: int = MAX_DEPTH) -> str:
    """The detail for a body nested deeper than ``max_depth``."""
    return f"JSON nested too deeply (limit {max_depth} levels)"


def body_problem(body: bytes, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why a JSON request body must be refused before the framework decodes it, or None: not
    UTF-8, nested deeper than ``max_depth``, a lone surrogate escape, or a NUL character in a
    string."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return INVALID_UTF8
    if nesting_exceeds(body, max_depth):
        return too_deep(max_depth)
    escape = lone_surrogate(body)
    if escape is not None:
        return f"Invalid JSON body: lone UTF-16 surrogate {escape} in a string (not valid Unicode)"
    if b"\\u0000" in body or b"\x00" in body:
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            return decode_error_detail(str(exc))
        if contains_nul(decoded):
            return "NUL bytes are not allowed in strings"
    return None


def request_problem(path: str, query: bytes, body: bytes) -> tuple[str, str] | None:
    """Why a REST request must be refused before anything decodes it, as ``(code, detail)``
    (codes of :mod:`vk_shared.problems`), or None: a NUL byte in the URL, then
    :func:`body_problem` for the body (of any method)."""
    if "\x00" in path or b"%00" in query:
        return "invalid_input", "NUL bytes are not allowed in the URL"
    problem = body_problem(body)
    if problem is None:
        return None
    if problem == too_deep():
        return "json_too_deep", problem
    if problem.startswith("NUL"):
        return "invalid_input", problem
    return "invalid_json", problem


_JSON: Final = "application/json"
_NO_BODY: Final = object()
_BODY_TYPES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _body_type(handler: Any) -> Any:
    """The type a route handler's JSON body decodes into (its ``data`` parameter, read by
    attribute from Litestar's parsed signature), or ``_NO_BODY``. Kept per handler function
    (the framework's handler objects cannot be weakly referenced)."""
    fn = handler.fn
    if fn not in _BODY_TYPES:
        signature = getattr(handler, "parsed_fn_signature", None)
        data = None if signature is None else signature.parameters.get("data")
        media = getattr(getattr(data, "kwarg_definition", None), "media_type", _JSON)
        found: Any = _NO_BODY
        if data is not None and str(getattr(media, "value", media)) == _JSON:
            # ``raw`` keeps a ``msgspec.Meta`` of the body itself; msgspec ignores the
            # framework's own annotations (``Body(...)``) next to it.
            found = data.raw
        _BODY_TYPES[fn] = found
    return _BODY_TYPES[fn]


def _integral_floats_as_ints(value: Any) -> Any:
    """``value`` with every float that has no fractional part (``5.0``) made an int, in place
    and without recursion: JSON Schema's ``integer`` (the OpenAPI documents) includes them."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            entries: Any = item.items()
        elif isinstance(item, list):
            entries = enumerate(item)
        else:
            continue
        for key, member in list(entries):
            if isinstance(member, float) and member.is_integer():
                item[key] = int(member)
            elif isinstance(member, dict | list):
                pending.append(member)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _field_detail(message: str) -> str:
    """msgspec's ``Expected `bool`, got `int` - at `$.done``` as a client-facing detail naming
    the field (the style of :func:`vk_shared.problems.validation_detail`)."""
    reason, _, where = message.partition(" - at `")
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    if path in ("", "[...]"):  # the body itself, or somewhere the untyped decoder cannot name
        return f"Invalid request: body: {reason}"
    return f"Invalid request: body field {path!r}: {reason}"


def strict_body_problem(handler: Any, body: bytes) -> tuple[str, str] | None:
    """Why a JSON request body does not convert strictly into ``handler``'s body type, as
    ``(code, detail)``, or None (also for a handler without a JSON body, and for an empty body,
    which the framework answers itself). Only an integral float may stand for an integer."""
    target = _body_type(handler) if body and handler is not None else _NO_BODY
    if target is _NO_BODY:
        return None
    try:
        msgspec.convert(_integral_floats_as_ints(msgspec.json.decode(body)), target, strict=True)
    except msgspec.ValidationError as exc:
        return "validation_failed", _field_detail(str(exc))
    except msgspec.DecodeError as exc:
        return "invalid_json", decode_error_detail(str(exc))
    return None


class _Request(Protocol):
    """What :func:`refuse_bad_request` reads of a web framework's request (Litestar's)."""

    @property
    def scope(self) -> Mapping[str, Any]: ...

    def body(self) -> Awaitable[bytes]: ...


async def refuse_bad_request(request: _Request) -> None:
    """``before_request`` hook: raise :class:`~vk_shared.errors.InvalidInput` (with the code of
    :func:`request_problem`, then of :func:`strict_body_problem`) for a request that must be
    refused before the framework decodes it."""
    body = await request.body()
    problem = request_problem(
        request.scope.get("path", ""), request.scope.get("query_string", b""), body
    ) or strict_body_problem(request.scope.get("route_handler"), body)
    if problem is not None:
        code, detail = problem
        raise InvalidInput(detail, code=code)


async def refuse_bad_url(request: _Request) -> None:
    """``before_request`` hook of a route whose body is not JSON (an image upload): only the URL
    is checked (a NUL byte in it: :class:`~vk_shared.errors.InvalidInput`); the body is left to
    the handler."""
    problem = request_problem(
        request.scope.get("path", ""), request.scope.get("query_string", b""), b""
    )
    if problem is not None:
        code, detail = problem
        raise InvalidInput(detail, code=code)
