"""Constrained scalar types for request bodies and queries."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["Description", "Email", "Name", "Role", "ShortText", "Slug", "Text", "TokenText"]

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
Role = Literal["admin", "member"]
