"""Conversions between Python values and their SQLite storage (spec/node-store.md §1).

* UUID: 16-byte BLOB (``uuid_to_db`` / ``uuid_from_db``); a few columns hold hyphenated TEXT.
* Timestamp: UTC TEXT ``YYYY-MM-DD HH:MM:SS.fff`` (``ts_to_db`` / ``ts_from_db``); older columns
  written by ``CURRENT_TIMESTAMP`` have second precision and parse the same way.
* Rows become msgspec Structs with :func:`decode_row`, which understands both forms.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import msgspec

__all__ = [
    "decode_row",
    "decode_rows",
    "now_db",
    "ts_from_db",
    "ts_to_db",
    "uuid_from_db",
    "uuid_or_none",
    "uuid_to_db",
]

_S = TypeVar("_S", bound=msgspec.Struct)


def uuid_to_db(value: UUID) -> bytes:
    """The 16-byte BLOB form of a UUID."""
    return value.bytes


def uuid_or_none(value: UUID | None) -> bytes | None:
    """:func:`uuid_to_db`, passing ``None`` through."""
    return None if value is None else value.bytes


def uuid_from_db(value: bytes | str) -> UUID:
    """A UUID from its BLOB (or hyphenated TEXT) column value."""
    if isinstance(value, bytes | bytearray | memoryview):
        return UUID(bytes=bytes(value))
    return UUID(value)


def ts_to_db(value: datetime) -> str:
    """UTC TEXT ``YYYY-MM-DD HH:MM:SS.fff``; a naive datetime is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def now_db() -> str:
    """The current UTC time in storage form."""
    return ts_to_db(datetime.now(UTC))


def ts_from_db(value: str) -> datetime:
    """An aware UTC datetime from a stored timestamp."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@cache
def _datetime_fields(model: type[msgspec.Struct]) -> frozenset[str]:
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    names: set[str] = set()
    for field in info.fields:
        types = (
            field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        )
        if any(isinstance(t, msgspec.inspect.DateTimeType) for t in types):
            names.add(field.name)
    return frozenset(names)


def decode_row(
    model: type[_S], row: sqlite3.Row | dict[str, Any], *, json: tuple[str, ...] = ()
) -> _S:
    """Convert one row to ``model``: BLOB/TEXT UUIDs, stored timestamps, 0/1 booleans, and the
    ``json`` columns parsed from their text."""
    data = dict(row)
    for name in json:
        value = data.get(name)
        if isinstance(value, str):
            data[name] = msgspec.json.decode(value)
    for name in _datetime_fields(model):
        value = data.get(name)
        if isinstance(value, str):
            data[name] = ts_from_db(value)
    return msgspec.convert(data, model, strict=False)


def decode_rows(
    model: type[_S], rows: Iterable[sqlite3.Row], *, json: tuple[str, ...] = ()
) -> list[_S]:
    """:func:`decode_row` for every row."""
    return [decode_row(model, row, json=json) for row in rows]
