"""Payload templates (rules in :mod:`vk_shared.webhooks`): checked when a webhook is saved and
rendered without evaluating anything. A template that does not check is a 422 here."""

from __future__ import annotations

from typing import Any

from vk_node.errors import Unprocessable
from vk_shared import webhooks as shared
from vk_shared.webhooks import MAX_DEPTH, MAX_TEMPLATE_BYTES, flatten, render

__all__ = ["MAX_DEPTH", "MAX_TEMPLATE_BYTES", "check", "flatten", "render"]


def check(text: str, known: frozenset[str]) -> Any:
    """The parsed template; :class:`Unprocessable` naming what is wrong."""
    try:
        return shared.check_template(text, known)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
