"""Constrained scalar types for request bodies and query parameters of the local API.

Body fields carry their bounds as ``msgspec.Meta`` (msgspec validates them). Query parameters
carry theirs as ``QueryParameter(...)``: Litestar validates a query parameter against the bounds
of its parameter declaration only and ignores a ``msgspec.Meta`` inside its type
(tests/unit/test_handler_inputs.py holds every handler to this).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.params import QueryParameter

from vk_shared.protocol import MAX_NAME_LENGTH, MAX_TASK_TEXT_BYTES, MAX_TEXT_LENGTH

__all__ = [
    "BranchName",
    "Color",
    "Description",
    "ExecutorName",
    "Name",
    "NameQuery",
    "Path",
    "Script",
    "ShortText",
    "Text",
    "Title",
    "VariableName",
    "given_fields",
]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
ShortText = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TASK_TEXT_BYTES)]
Description = Annotated[str, msgspec.Meta(max_length=MAX_TASK_TEXT_BYTES)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TASK_TEXT_BYTES)]
Path = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]
Script = Annotated[str, msgspec.Meta(max_length=MAX_TASK_TEXT_BYTES)]
BranchName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        # Explicit character classes: ``\s`` means other characters in Python than in the
        # ECMA-262 regular expressions of JSON Schema (the OpenAPI document).
        pattern=r"^[^\x00-\x20\x7f~^:?*\[\\-][^\x00-\x20\x7f~^:?*\[\\]*$",
    ),
]
ExecutorName = Annotated[str, msgspec.Meta(pattern="^[A-Z][A-Z0-9_]{0,63}$")]
VariableName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern="^[A-Z][A-Z0-9_]*$")
]
Color = Annotated[str, msgspec.Meta(pattern="^#[0-9a-fA-F]{6}$")]
NameQuery = Annotated[str | None, QueryParameter(max_length=MAX_NAME_LENGTH)]
"""A query parameter: a name to filter by."""


def given_fields(body: msgspec.Struct) -> dict[str, Any]:
    """The fields of a request body the client actually sent (``UNSET`` ones dropped)."""
    return {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
