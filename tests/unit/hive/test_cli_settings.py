"""The hive's command line and settings behave like the node's: options after the subcommand,
invalid settings as one line naming the variable with exit code 2, and ``config show``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vk_hive.cli import main
from vk_hive.settings import SPEC, SettingsError, load_settings

SECRET = "jwt-" + "s" * 40 + "-tail"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VK_HIVE_* variable of the surrounding environment reaches these tests."""
    for name in SPEC.env_names().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("VK_HIVE_CONFIG", raising=False)


def _show(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    assert main([*argv, "--json"]) == 0
    shown: dict[str, dict[str, object]] = json.loads(capsys.readouterr().out)
    return shown


def test_global_options_may_follow_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """--database-url and --log-format are accepted after `serve`, `config show` or `admin …` as
    well as before them, and a flag is a setting's source."""
    url = "postgresql://me@db.example:5432/hive"
    shown = _show(["config", "show", "--database-url", url, "--log-format", "console"], capsys)
    assert shown["settings"]["database_url"] == url
    assert shown["sources"]["database_url"] == "flag --database-url"
    assert shown["sources"]["log_format"] == "flag --log-format"
    before = _show(["--database-url", url, "config", "show"], capsys)
    assert before["settings"]["database_url"] == url
    from vk_hive.cli import build_parser

    args = build_parser().parse_args(["serve", "--database-url", url, "--port", "9100"])
    assert (args.command, args.database_url, args.port) == ("serve", url, "9100")
    args = build_parser().parse_args(
        ["admin", "bootstrap", "--email", "a@example.com", "--database-url", url]
    )
    assert args.database_url == url


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VK_HIVE_PORT": "many"}, "VK_HIVE_PORT"),
        ({"VK_HIVE_LEASE_TTL_S": "0"}, "VK_HIVE_LEASE_TTL_S"),
        ({"VK_HIVE_LOG_LEVEL": "loud"}, "VK_HIVE_LOG_LEVEL"),
        ({"VK_HIVE_DB_POOL_MIN": "5", "VK_HIVE_DB_POOL_MAX": "2"}, "VK_HIVE_DB_POOL_MAX"),
        ({"VK_HIVE_JWT_SECRET": "too-short-secret"}, "VK_HIVE_JWT_SECRET"),
        ({"VK_HIVE_AUTH_RATE_LIMIT_UNIT": "week"}, "VK_HIVE_AUTH_RATE_LIMIT_UNIT"),
        ({"VK_HIVE_GOOGLE_SCOPE": "a,b c"}, "VK_HIVE_GOOGLE_SCOPE"),
    ],
)
def test_invalid_settings_exit_2_naming_the_variable(
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An invalid value stops every command before it runs with exit code 2 and one stderr line
    that names the variable (and never repeats a secret)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for argv in (["migrate"], ["config", "show"], ["serve"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith("vk-hive: invalid settings:")
        assert named in err
        assert "too-short-secret" not in err


def test_config_show_masks_secrets_and_names_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`config show` prints every setting (providers' included) with its source — a TOML file
    named by VK_HIVE_CONFIG, the environment, a default — and shows the JWT secret, a client
    secret and a database password only masked."""
    conf = tmp_path / "hive.toml"
    conf.write_text('[hive]\nport = 9300\n[github]\nclient_id = "gh-id"\n')
    client_secret = "gh-secret-" + "c" * 30
    monkeypatch.setenv("VK_HIVE_CONFIG", str(conf))
    monkeypatch.setenv("VK_HIVE_JWT_SECRET", SECRET)
    monkeypatch.setenv("VK_HIVE_GITHUB_CLIENT_SECRET", client_secret)
    monkeypatch.setenv("VK_HIVE_DATABASE_URL", "postgresql://vk:pa55word@db:5432/vk")
    assert main(["config", "show"]) == 0
    text = capsys.readouterr().out
    for secret in (SECRET, client_secret, "pa55word"):
        assert secret not in text
    assert "github.client_id" in text
    assert f"(file {conf})" in text
    shown = _show(["config", "show"], capsys)
    settings, sources = shown["settings"], shown["sources"]
    assert settings["port"] == 9300
    assert settings["jwt_secret"] == "jwt-…tail"
    assert settings["database_url"] == "postgresql://vk:****@db:5432/vk"
    assert settings["github"] == {
        **settings["github"],  # type: ignore[dict-item]
        "client_id": "gh-id",
        "client_secret": "gh-s…cccc",
        "scope": ["read:user", "user:email"],
    }
    assert sources["github.client_id"] == f"file {conf}"
    assert sources["github.client_secret"] == "env VK_HIVE_GITHUB_CLIENT_SECRET"
    assert sources["lease_ttl_s"] == "default"
    assert set(sources) == set(SPEC.env_names())


def test_every_setting_loads_from_its_variable() -> None:
    """Settings the hive's variable table used to miss load from their variables now: pool
    sizes, session inactivity, token leeway, the LISTEN check and a provider's scopes."""
    env = {
        "VK_HIVE_DB_POOL_MIN": "2",
        "VK_HIVE_DB_POOL_MAX": "4",
        "VK_HIVE_SESSION_INACTIVITY_S": "3600",
        "VK_HIVE_TOKEN_LEEWAY_S": "0",
        "VK_HIVE_ACTIVITY_LISTEN_CHECK_S": "0.5",
        "VK_HIVE_GOOGLE_SCOPE": "openid, email",
    }
    s = load_settings(env=env)
    assert (s.db_pool_min, s.db_pool_max, s.session_inactivity_s) == (2, 4, 3600)
    assert (s.token_leeway_s, s.activity_listen_check_s) == (0, 0.5)
    assert s.google.scope == ("openid", "email")
    with pytest.raises(SettingsError, match="VK_HIVE_TOKEN_LEEWAY_S"):
        load_settings(env={"VK_HIVE_TOKEN_LEEWAY_S": "-1"})
