"""Random secrets, hashes and constant-time comparison used by every credential kind."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

__all__ = ["constant_time_equal", "random_alnum", "sha256_hex"]

_ALNUM = string.ascii_letters + string.digits


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))
