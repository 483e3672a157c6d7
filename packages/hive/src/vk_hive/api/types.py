"""Constrained scalar types for request bodies and queries."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["Description", "Email", "Name", "Role", "ShortText", "Slug", "Text", "TokenText"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Description = Annotated[str, msgspec.Meta(max_length=50 * 1024)]
Text = Annotated[str, msgspec.Meta(max_length=100 * 1024)]
TokenText = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Role = Literal["admin", "member"]
