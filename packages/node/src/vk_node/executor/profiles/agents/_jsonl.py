"""Line-delimited JSON decoding for agent output, plus tolerant field access.

Agents print one JSON object per line; anything else (banners, npm warnings, partial lines) is
not an event. Field access never raises: a missing or mistyped field reads as ``None`` / empty.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["as_dict", "as_list", "decode_event", "get_number", "get_str"]

_DECODER = msgspec.json.Decoder(dict[str, Any])


def decode_event(line: str) -> dict[str, Any] | None:
    """The JSON object on this line, or ``None`` when the line is not one."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        return _DECODER.decode(text)
    except msgspec.DecodeError:
        return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def get_str(obj: Any, *path: str) -> str | None:
    """The non-empty string at ``obj[path[0]][path[1]]...``, else ``None``."""
    value = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None


def get_number(obj: Any, key: str) -> int | float | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
