"""The checks of untrusted JSON bodies: exact nesting depth, lone surrogate escapes, NUL bytes —
without recursion and in linear time — and the strict JSON types of a handler's body."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import get, post
from litestar.params import JSONBody

from vk_shared.jsoncheck import (
    INVALID_UTF8,
    MAX_DEPTH,
    body_problem,
    contains_nul,
    decode_error_detail,
    lone_surrogate,
    nesting_exceeds,
    strict_body_problem,
)


def _depth(value: Any) -> int:
    """Nesting depth of arrays/objects (a scalar is 0), computed without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            pending.extend(
                (child, level) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


# Strings full of what could fool a scanner: brackets, quotes, backslashes, escapes.
_TRICKY = st.text(alphabet='[]{}"\\/u0aé\n\x00\U0001f600', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(0, 8))
def test_nesting_check_is_exact_for_any_json(value: Any, limit: int) -> None:
    """For any JSON document, however its strings are made, the check says "too deep" exactly
    when the real nesting exceeds the limit."""
    data = json.dumps(value, ensure_ascii=False).encode()
    assert nesting_exceeds(data, limit) == (_depth(value) > limit)


@pytest.mark.parametrize(
    ("data", "too_deep"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, False),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), True),
        (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), True),
        (b"[" * 3000 + b"]" * 3000, True),
        (b'["' + b"[" * 5000 + b'"]', False),
        (b'["\\"' + b"[" * 5000 + b'"]', False),
        (b'["\\\\"' + b"," + b"[" * 100 + b"]" * 100 + b"]", True),
        (b"[1, 2]" * 1000, False),
        (b"]" * 5000 + b"[" * 10, False),
        (b"[" * 100, True),
        (b"", False),
    ],
    ids=[
        "at-limit",
        "one-over",
        "objects",
        "3000",
        "brackets-in-string",
        "escaped-quote-in-string",
        "escaped-backslash-ends-string",
        "wide-not-deep",
        "unbalanced-closing",
        "unclosed",
        "empty",
    ],
)
def test_nesting_check_examples(data: bytes, too_deep: bool) -> None:
    """The limit itself passes, one more level fails; brackets in strings never count."""
    assert nesting_exceeds(data) is too_deep


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (rb'"\ud800"', "\\ud800"),
        (rb'"\uDBFF"', "\\uDBFF"),
        (rb'"\udc00"', "\\udc00"),
        (rb'"\ud83d\ude00"', None),
        (rb'"\uD83D\uDE00"', None),
        (rb'"\ud83d\ud83d\ude00"', "\\ud83d"),
        (rb'"\ud83d\\ude00"', "\\ud83d"),
        (rb'"\udc00\ud800"', "\\udc00"),
        (rb'"\\ud800"', None),
        (rb'"\\\ud800"', "\\ud800"),
        (rb'"\u0041\u00e9"', None),
        (b'"\xed\xa0\x80"', None),
    ],
)
def test_lone_surrogate_escapes_are_found(data: bytes, found: str | None) -> None:
    """Only an escape of an unpaired surrogate is reported; pairs and escaped backslashes
    followed by the text ``ud800`` are fine (raw surrogate bytes are msgspec's to reject)."""
    assert lone_surrogate(data) == found


def test_nul_check_walks_any_depth_without_recursion() -> None:
    """NUL characters are found in keys and values, even 100,000 levels down."""
    deep: Any = "a\x00b"
    for _ in range(100_000):
        deep = [deep]
    assert contains_nul(deep)
    assert contains_nul({"k\x00": 1})
    assert not contains_nul({"k": ["v", 1, None, {"x": "y"}]})


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"name": "x"}', None),
        (b"", None),
        (b"[" * 3000 + b"]" * 3000, f"JSON nested too deeply (limit {MAX_DEPTH} levels)"),
        (rb'{"name": "\ud800"}', "lone UTF-16 surrogate \\ud800"),
        (rb'{"name": "a\u0000b"}', "NUL bytes are not allowed in strings"),
        (rb'{"name\u0000": 1}', "NUL bytes are not allowed in strings"),
        (rb'{"name": "a\\u0000b"}', None),
        (b'{"name": "a\x00b"}', "Invalid JSON body"),
    ],
)
def test_body_problem(body: bytes, problem: str | None) -> None:
    """A body is refused for nesting, lone surrogates or NUL characters, with a clear reason."""
    found = body_problem(body)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_decode_error_details_read_clearly() -> None:
    """msgspec's messages lose their uninformative parts."""
    assert decode_error_detail("Integer value out of range - at `$[...]`") == (
        "Invalid JSON body: Integer value out of range"
    )
    assert decode_error_detail("JSON is malformed: invalid character (byte 9)") == (
        "Invalid JSON body: invalid character (byte 9)"
    )
    assert decode_error_detail("Input data was truncated") == (
        "Invalid JSON body: the JSON ends before it is complete"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 65 + b'"' + b'\\"' * 500_000,
        b"[" * 65 + b'"' * 1_000_000,
        b"[" * 65 + b"\\" * 1_000_000,
        b"[" * 65 + b"\\" * 1_000_000 + b"ud800",
        b'"\\ud83d\\ude00"' * 70_000,
        b"[" * 500_000 + b"]" * 500_000,
    ],
    ids=[
        "unterminated-escaped-quotes",
        "quotes",
        "backslashes",
        "backslashes-then-u",
        "pairs",
        "deep",
    ],
)
def test_a_megabyte_of_adversarial_input_is_checked_quickly(data: bytes) -> None:
    """The checks stay linear on inputs built to make a scanner backtrack: a megabyte takes
    well under a second (a quadratic scan would take minutes)."""
    started = time.perf_counter()
    nesting_exceeds(data)
    lone_surrogate(data)
    assert time.perf_counter() - started < 1.0


def test_a_body_that_is_not_utf8_is_refused_with_one_message() -> None:
    """Invalid UTF-8 anywhere in a body is refused before decoding, with the same detail on every
    msgspec release; valid multi-byte text passes."""
    assert body_problem(b'{"a": "\xff"}') == INVALID_UTF8
    assert body_problem(b'{"a": "caf\xc3"}') == INVALID_UTF8  # truncated sequence
    assert body_problem('{"title": "café 🐝"}'.encode()) is None


class _When(msgspec.Struct, forbid_unknown_fields=True):
    at: dt.datetime
    id: uuid.UUID
    color: Literal["red", "blue"]
    done: bool = False
    count: Annotated[int, msgspec.Meta(ge=0)] = 0
    note: str | None = None


@post("/when", sync_to_thread=False)
def _when(data: JSONBody[_When]) -> None:
    return None


@get("/plain", sync_to_thread=False)
def _plain() -> None:
    return None


_WHEN = {"at": "2026-12-04T10:00:00+00:00", "id": str(uuid.uuid4()), "color": "red"}


def test_a_strict_body_takes_datetimes_uuids_and_literals_as_json_strings() -> None:
    """A datetime, a UUID and a literal given as JSON strings, defaults, a null optional field
    and an integer written ``5.0`` pass the strict check; so does any body of a handler that
    takes none."""
    for body in (_WHEN, {**_WHEN, "done": True, "count": 3, "note": None}):
        assert strict_body_problem(_when, json.dumps(body).encode()) is None
    # JSON Schema's ``integer`` (the OpenAPI documents) includes a number with a zero fraction.
    assert strict_body_problem(_when, json.dumps({**_WHEN, "count": 5.0}).encode()) is None
    assert strict_body_problem(_plain, b'{"anything": 1}') is None
    assert strict_body_problem(_when, b"") is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("done", 1, "Expected `bool`, got `int`"),
        ("done", "true", "Expected `bool`, got `str`"),
        ("count", "5", "Expected `int`, got `str`"),
        ("count", 5.5, "Expected `int`, got `float`"),
        ("count", -1, "Expected `int` >= 0"),
        ("note", 5, "Expected `str | null`, got `int`"),
        ("at", 1764842400, "Expected `datetime`, got `int`"),
        ("id", "not-a-uuid", "Invalid UUID"),
        ("color", "green", "Invalid enum value 'green'"),
    ],
)
def test_a_wrong_json_type_names_the_field(field: str, value: object, reason: str) -> None:
    """A value of the wrong JSON type (or out of its bounds) is refused naming the field."""
    body = json.dumps({**_WHEN, field: value}).encode()
    assert strict_body_problem(_when, body) == (
        "validation_failed",
        f"Invalid request: body field {field!r}: {reason}",
    )


def test_a_body_of_the_wrong_shape_or_not_json_is_refused() -> None:
    """A body that is no object, has an unknown field, a number beyond a float or is not JSON
    is refused as such."""
    assert strict_body_problem(_when, b"[1]") == (
        "validation_failed",
        "Invalid request: body: Expected `object`, got `array`",
    )
    unknown = json.dumps({**_WHEN, "extra": 1}).encode()
    assert strict_body_problem(_when, unknown) == (
        "validation_failed",
        "Invalid request: body: Object contains unknown field `extra`",
    )
    huge = json.dumps(_WHEN).replace("{", '{"count": 1e400, ', 1).encode()
    assert strict_body_problem(_when, huge) == (
        "validation_failed",
        "Invalid request: body: Number out of range",
    )
    code, detail = strict_body_problem(_when, b'{"at": ') or ("", "")
    assert (code, detail) == (
        "invalid_json",
        "Invalid JSON body: the JSON ends before it is complete",
    )
