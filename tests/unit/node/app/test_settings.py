"""Node settings: layering, validation and secret masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vk_node.cli import main
from vk_node.settings import SettingsError, load_settings


def test_defaults_without_environment(tmp_path: Path) -> None:
    """With an empty environment the documented defaults apply and the data dir is per-user."""
    loaded = load_settings(env={"HOME": str(tmp_path)})
    s = loaded.settings
    assert (s.host, s.port, s.max_concurrent, s.hive_url) == ("127.0.0.1", 3000, 1, "")
    assert s.standalone
    assert s.db_path == tmp_path / ".local" / "share" / "vk-node" / "db.sqlite"
    assert s.name  # the host name
    assert loaded.sources["port"] == "default"


def test_layers_file_then_env_then_flags(tmp_path: Path) -> None:
    """A TOML file overrides defaults, the environment overrides the file, flags override both."""
    cfg = tmp_path / "node.toml"
    cfg.write_text('port = 4000\nhost = "0.0.0.0"\nname = "from-file"\nexecutors = ["script"]\n')
    env = {"VK_NODE_CONFIG": str(cfg), "VK_NODE_PORT": "5000", "VK_NODE_DATA_DIR": str(tmp_path)}
    loaded = load_settings(env=env, overrides={"port": "6000", "name": None})
    s = loaded.settings
    assert (s.port, s.host, s.name, s.executors) == (6000, "0.0.0.0", "from-file", ("SCRIPT",))
    assert loaded.sources["port"] == "flag --port"
    assert loaded.sources["host"] == f"file {cfg}"
    assert loaded.sources["data_dir"] == "env VK_NODE_DATA_DIR"


def test_executor_list_from_env(tmp_path: Path) -> None:
    """VK_NODE_EXECUTORS is a comma list; names are upper-cased and blanks dropped."""
    s = load_settings(env={"HOME": str(tmp_path), "VK_NODE_EXECUTORS": "script, claude_code,"})
    assert s.settings.executors == ("SCRIPT", "CLAUDE_CODE")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VK_NODE_PORT": "abc"}, "VK_NODE_PORT"),
        ({"VK_NODE_PORT": "70000"}, "VK_NODE_PORT"),
        ({"VK_NODE_MAX_CONCURRENT": "0"}, "VK_NODE_MAX_CONCURRENT"),
        ({"VK_NODE_LOG_FORMAT": "xml"}, "VK_NODE_LOG_FORMAT"),
        ({"VK_NODE_EXECUTORS": "bad name"}, "VK_NODE_EXECUTORS"),
        ({"VK_HIVE_URL": "ftp://x"}, "VK_HIVE_URL"),
    ],
)
def test_invalid_values_name_the_setting(tmp_path: Path, env: dict[str, str], named: str) -> None:
    """An invalid value is rejected with a one-line message naming the setting."""
    with pytest.raises(SettingsError) as info:
        load_settings(env={"HOME": str(tmp_path), **env})
    assert named in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    """A TOML key that is not a setting is an error, not silently ignored."""
    cfg = tmp_path / "node.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(env={"HOME": str(tmp_path)}, config_file=cfg)


def test_invalid_settings_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI reports invalid settings on one stderr line and exits with status 2."""
    monkeypatch.setenv("VK_NODE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VK_NODE_PORT", "nope")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert "VK_NODE_PORT" in err
    assert len(err.splitlines()) == 1


def test_api_token_is_a_secret_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """VK_NODE_API_TOKEN is read from the environment and shown only masked by config show."""
    token = "tok-abcdefghijklmnopqrstu-9876"
    monkeypatch.setenv("VK_NODE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VK_NODE_API_TOKEN", token)
    loaded = load_settings()
    assert loaded.settings.api_token == token
    assert loaded.sources["api_token"] == "env VK_NODE_API_TOKEN"
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert token not in out
    assert json.loads(out)["settings"]["api_token"] == "tok-…9876"


@pytest.mark.parametrize("bad", ["short", "has a space in it 0123", "tab\tinside-0123456789"])
def test_a_malformed_api_token_is_rejected_without_echoing_it(tmp_path: Path, bad: str) -> None:
    """A token that is too short or holds spaces or control characters is a settings error that
    names VK_NODE_API_TOKEN but never repeats the value."""
    with pytest.raises(SettingsError) as info:
        load_settings(env={"HOME": str(tmp_path), "VK_NODE_API_TOKEN": bad})
    assert "VK_NODE_API_TOKEN" in str(info.value)
    assert bad not in str(info.value)


def test_serve_refuses_a_non_loopback_bind_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vk-node serve --host 0.0.0.0` without a token exits 2 with one line naming the token
    setting, before it creates the data dir."""
    data = tmp_path / "data"
    monkeypatch.setenv("VK_NODE_DATA_DIR", str(data))
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "VK_NODE_API_TOKEN is required" in err
    assert not data.exists()


@pytest.mark.parametrize(
    ("raw", "urls"),
    [
        ("", ()),
        ("ws://a:9000", ("ws://a:9000",)),
        ("ws://a:9000,ws://b:9000", ("ws://a:9000", "ws://b:9000")),
        (
            " https://a.example.com , wss://b.example.com ",
            ("https://a.example.com", "wss://b.example.com"),
        ),
        # The same hive twice (http and ws are one hive; host names are case-blind): kept once.
        ("http://a:9000,ws://b:9000,ws://A:9000/x", ("http://a:9000", "ws://b:9000")),
        # TLS or not makes a different endpoint.
        ("http://a:9000,https://a:9000", ("http://a:9000", "https://a:9000")),
    ],
)
def test_hive_url_is_an_ordered_list_without_duplicates(
    tmp_path: Path, raw: str, urls: tuple[str, ...]
) -> None:
    """VK_HIVE_URL holds one URL or several separated by commas, tried in this order."""
    s = load_settings(env={"HOME": str(tmp_path), "VK_HIVE_URL": raw}).settings
    assert s.hive_urls == urls
    assert s.hive_url == raw
    assert s.standalone is (raw == "")


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("ws://a:9000,,ws://b:9000", "entry 2"),
        ("ws://a:9000,", "entry 2"),
        (",ws://a:9000", "entry 1"),
        ("ws://a:9000, ", "entry 2"),
        ("ws://a:9000,ftp://b:21", "'ftp://b:21'"),
        ("ws://a:9000,b:9000", "'b:9000'"),
    ],
)
def test_a_bad_hive_url_entry_is_named(tmp_path: Path, raw: str, named: str) -> None:
    """An empty or malformed entry is refused in one line naming VK_HIVE_URL and the entry."""
    with pytest.raises(SettingsError) as info:
        load_settings(env={"HOME": str(tmp_path), "VK_HIVE_URL": raw})
    message = str(info.value)
    assert "VK_HIVE_URL" in message
    assert named in message
    assert "\n" not in message
