"""Constrained scalar types for request bodies, query parameters and path parameters.

Body fields carry their bounds as ``msgspec.Meta`` (msgspec validates them). Query and path
parameters carry theirs as ``QueryParameter(...)`` / ``PathParameter(...)``: Litestar validates a
parameter against the bounds of its parameter declaration only and ignores a ``msgspec.Meta``
inside its type, which would accept any value (tests/unit/test_handler_inputs.py holds every
handler to this).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar.params import PathParameter, QueryParameter

from vk_shared.wire.common import INT64_MAX

__all__ = [
    "MAX_PAGE",
    "Cursor",
    "Description",
    "Email",
    "Name",
    "PageLimit",
    "QueryText",
    "Role",
    "ShortText",
    "Slug",
    "Text",
    "TokenPath",
    "TokenText",
    "Version",
    "VersionQuery",
]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f-\x9f]+"
# Python's ``\s`` (the server) also matches U+001C-U+001F and U+0085, which the ECMA ``\s`` of the
# OpenAPI document does not; naming every control character makes the two agree.
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=320, pattern=f"^{_EMAIL_PART}@{_EMAIL_PART}$")
]
Description = Annotated[str, msgspec.Meta(max_length=50 * 1024)]
Text = Annotated[str, msgspec.Meta(max_length=100 * 1024)]
TokenText = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
TokenPath = Annotated[str, PathParameter(min_length=1, max_length=4096)]
"""A path parameter: an invitation token."""
Role = Literal["admin", "member"]
Version = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
"""A body field: the version the client last saw (optimistic concurrency)."""

MAX_PAGE = 500
"""The most items one page of a paged list holds."""
Cursor = Annotated[int, QueryParameter(ge=0, le=INT64_MAX)]
"""A query parameter: the id or seq a page starts after (0: from the start)."""
PageLimit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
"""A query parameter: the size of a page."""
VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=INT64_MAX)]
"""A query parameter: the version the client last saw (optimistic concurrency)."""
QueryText = Annotated[str | None, QueryParameter(max_length=2048)]
"""A query parameter: a free-form value handed over by a third party (an OAuth provider)."""
