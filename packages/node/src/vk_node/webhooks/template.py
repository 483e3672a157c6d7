"""Payload templates: JSON with ``{{placeholder}}`` strings, checked when a webhook is saved and
rendered without evaluating anything.

A template is a JSON document (at most :data:`MAX_TEMPLATE_BYTES`, nested at most
:data:`MAX_DEPTH` deep). Inside its string values (never its object keys), ``{{ name }}`` names a
field of the event body by its dotted path (``task.title``, ``process.exit_code``). A string that
is exactly one placeholder becomes that field's JSON value (a number stays a number, an object an
object); a placeholder inside longer text is replaced by the value's text (``null`` gives ``""``,
objects their JSON). Rendering walks the parsed document and substitutes values; the result is
encoded as JSON again, so a value can never break out of its string. Unknown placeholders are
refused when the template is saved (:func:`check`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from vk_node.errors import Unprocessable

__all__ = ["MAX_DEPTH", "MAX_TEMPLATE_BYTES", "check", "flatten", "render"]

MAX_TEMPLATE_BYTES = 16 * 1024
MAX_DEPTH = 32

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _strings(value: Any, depth: int = 0) -> list[str]:
    """Every string value of a parsed template (keys excluded); refuses too deep a document."""
    if depth > MAX_DEPTH:
        raise Unprocessable(f"payload_template is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v, depth + 1)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, depth + 1)]
    return []


def check(text: str, known: frozenset[str]) -> Any:
    """The parsed template; :class:`Unprocessable` naming what is wrong (not JSON, too large or
    deep, a placeholder that is not in ``known``)."""
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise Unprocessable(f"payload_template is larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        parsed = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise Unprocessable(f"payload_template is not JSON: {exc}") from None
    for string in _strings(parsed):
        for name in _PLACEHOLDER.findall(string):
            if name not in known:
                raise Unprocessable(
                    f"payload_template: unknown placeholder {{{{{name}}}}}; known: "
                    + ", ".join(sorted(known))
                )
    return parsed


def flatten(body: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every field of ``body`` by dotted path, objects included (``task`` and ``task.title``)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        path = f"{prefix}{key}"
        out[path] = value
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """The template with its placeholders replaced by ``values`` (a missing one is ``null``)."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None:
            return values.get(whole.group(1))
        return _PLACEHOLDER.sub(lambda m: _text(values.get(m.group(1))), template)
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    return template
