"""Settings layering, token signing and secret masking of the hive, without services."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from vk_hive.auth.api_keys import generate_api_key
from vk_hive.auth.tokens import TokenError, TokenSigner
from vk_hive.settings import SettingsError, load_settings
from vk_shared.logkit import mask_secret

SECRET = b"s" * 32


def test_defaults_match_the_public_contract() -> None:
    """With no file, env or flags the hive listens on 127.0.0.1:9000 with the documented TTLs."""
    s = load_settings(env={})
    assert (s.host, s.port, s.lease_ttl_s, s.heartbeat_timeout_s) == ("127.0.0.1", 9000, 60, 90)
    assert s.log_format == "json"


def test_layers_apply_in_order(tmp_path: Path) -> None:
    """TOML overrides defaults, env overrides TOML, CLI overrides env."""
    conf = tmp_path / "hive.toml"
    conf.write_text('port = 7000\nhost = "0.0.0.0"\nlease_ttl_s = 5\n[github]\nclient_id = "gh"\n')
    env = {
        "VK_HIVE_PORT": "7100",
        "VK_HIVE_LOG_FORMAT": "console",
        "VK_HIVE_GITHUB_CLIENT_SECRET": "x",
    }
    s = load_settings(config_file=conf, env=env, overrides={"port": 7200, "host": None})
    assert s.port == 7200
    assert s.host == "0.0.0.0"
    assert s.lease_ttl_s == 5
    assert s.log_format == "console"
    assert s.provider("github") is not None
    assert s.provider("google") is None


def test_unknown_keys_and_bad_values_are_rejected(tmp_path: Path) -> None:
    """An unknown TOML key, a non-numeric port or an unknown log format is a SettingsError."""
    conf = tmp_path / "hive.toml"
    conf.write_text("prot = 1\n")
    with pytest.raises(SettingsError):
        load_settings(config_file=conf, env={})
    with pytest.raises(SettingsError):
        load_settings(env={"VK_HIVE_PORT": "nine"})
    with pytest.raises(SettingsError):
        load_settings(env={"VK_HIVE_LOG_FORMAT": "xml"})


def test_access_token_round_trip_and_audience() -> None:
    """An access token verifies as access but never as a refresh token, and vice versa."""
    signer = TokenSigner(SECRET, access_ttl_s=60, refresh_ttl_s=600)
    user, session, jti = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    access = signer.verify_access(signer.mint_access(user, session))
    assert (access.sub, access.session_id) == (user, session)
    assert signer.verify_refresh(signer.mint_refresh(user, session, jti)).jti == jti
    with pytest.raises(TokenError):
        signer.verify_refresh(signer.mint_access(user, session))
    with pytest.raises(TokenError):
        signer.verify_access(signer.mint_refresh(user, session, jti))
    other = TokenSigner(b"t" * 32, access_ttl_s=60, refresh_ttl_s=600)
    with pytest.raises(TokenError, match="invalid_token"):
        other.verify_access(signer.mint_access(user, session))


def test_access_token_expires_after_its_ttl() -> None:
    """With a 1 s TTL and no leeway the token is refused as expired about a second later."""
    signer = TokenSigner(SECRET, access_ttl_s=1, refresh_ttl_s=600, leeway_s=0)
    token = signer.mint_access(uuid.uuid4(), uuid.uuid4())
    signer.verify_access(token)
    # exp is a whole second at most 1 s away; wait just past it instead of a fixed sleep.
    time.sleep(max(0.0, signer.verify_access(token).exp - time.time()) + 0.05)
    with pytest.raises(TokenError) as caught:
        signer.verify_access(token)
    assert caught.value.code == "token_expired"


def test_short_secret_is_refused() -> None:
    """A JWT secret under 32 bytes cannot be used."""
    with pytest.raises(ValueError, match="32"):
        TokenSigner(b"short", access_ttl_s=1, refresh_ttl_s=1)


def test_api_key_format_and_masking() -> None:
    """Node API keys are 64 lowercase hex chars; masked secrets keep only 4+4 characters."""
    key = generate_api_key()
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == key.lower()
    masked = mask_secret(key)
    assert masked == f"{key[:4]}…{key[-4:]}"
    assert mask_secret(key[:23]) == "****"
