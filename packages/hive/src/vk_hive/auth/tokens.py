"""HS256 access and refresh tokens (security.md §2)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import msgspec

from vk_hive.errors import Unauthorized

__all__ = ["AccessClaims", "RefreshClaims", "TokenError", "TokenSigner"]

_ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


class TokenError(Unauthorized):
    """A token that cannot be used; ``code`` is the machine-readable reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}", code=code)


class AccessClaims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    session_id: uuid.UUID
    iat: int
    exp: int


class RefreshClaims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    session_id: uuid.UUID
    jti: uuid.UUID
    iat: int
    exp: int


class TokenSigner:
    """Mints and verifies user tokens with one HS256 key."""

    def __init__(
        self,
        secret: bytes,
        *,
        access_ttl_s: float,
        refresh_ttl_s: float,
        leeway_s: float = 60.0,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.leeway_s = leeway_s

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def mint_access(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = int(time.time())
        return self._encode(
            {
                "sub": str(user_id),
                "session_id": str(session_id),
                "iat": now,
                "exp": now + max(1, round(self.access_ttl_s)),
                "aud": "access",
            }
        )

    def mint_refresh(self, user_id: uuid.UUID, session_id: uuid.UUID, jti: uuid.UUID) -> str:
        now = int(time.time())
        return self._encode(
            {
                "sub": str(user_id),
                "session_id": str(session_id),
                "jti": str(jti),
                "iat": now,
                "exp": now + max(1, round(self.refresh_ttl_s)),
                "aud": "refresh",
            }
        )

    def _decode(self, token: str, audience: str, required: list[str]) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=audience,
                leeway=self.leeway_s,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "the token has expired") from None
        except jwt.PyJWTError:
            raise TokenError("invalid_token", "the token is not valid") from None
        return claims

    def verify_access(self, token: str) -> AccessClaims:
        claims = self._decode(token, "access", ["sub", "exp", "aud", "session_id"])
        try:
            return msgspec.convert(claims, AccessClaims, strict=False)
        except msgspec.ValidationError:
            raise TokenError("invalid_token", "the token is not valid") from None

    def verify_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh", ["sub", "exp", "aud", "jti", "session_id"])
        try:
            return msgspec.convert(claims, RefreshClaims, strict=False)
        except msgspec.ValidationError:
            raise TokenError("invalid_token", "the token is not valid") from None
