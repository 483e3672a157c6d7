"""The settings loader both services share (vk_shared.settings): derived variable names, layer
order with sources, the empty-variable rule, comma lists, nested sections, and errors of one line
that name the variable and never repeat a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from vk_shared.settings import SettingsError, SettingsSpec


class Section(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str = ""
    scopes: tuple[str, ...] = ("a", "b")


class Toy(msgspec.Struct, frozen=True, kw_only=True):
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 80
    url: str = ""
    tags: tuple[str, ...] = ()
    api_token: Annotated[str, msgspec.Meta(min_length=16)] = ""
    github: Section = msgspec.field(default_factory=Section)

    def __post_init__(self) -> None:
        if self.url == "forbidden":
            raise SettingsError("not this one", setting="url")


SPEC = SettingsSpec(
    model=Toy,
    prefix="VK_TOY_",
    config_env="VK_TOY_CONFIG",
    section="toy",
    env_exceptions={"url": "VK_OTHER_URL"},
)


def test_names_layers_and_sources(tmp_path: Path) -> None:
    """Variables are derived from the names (a section's included, exceptions kept); file <
    environment < flags, each value's source recorded; a nested override merges field-wise."""
    assert SPEC.env_names() == {
        "port": "VK_TOY_PORT",
        "url": "VK_OTHER_URL",
        "tags": "VK_TOY_TAGS",
        "api_token": "VK_TOY_API_TOKEN",
        "github.client_id": "VK_TOY_GITHUB_CLIENT_ID",
        "github.scopes": "VK_TOY_GITHUB_SCOPES",
    }
    conf = tmp_path / "toy.toml"
    conf.write_text('[toy]\nport = 81\n[github]\nclient_id = "file"\n')
    env = {"VK_TOY_CONFIG": str(conf), "VK_TOY_PORT": "82", "VK_TOY_TAGS": " x, ,y "}
    loaded = SPEC.load(env=env, overrides={"port": "83", "github": {"scopes": ["c"]}})
    s = loaded.settings
    assert (s.port, s.tags, s.github) == (83, ("x", "y"), Section(client_id="file", scopes=("c",)))
    assert loaded.sources["port"] == "flag --port"
    assert loaded.sources["tags"] == "env VK_TOY_TAGS"
    assert loaded.sources["github.client_id"] == f"file {conf}"
    assert loaded.sources["github.scopes"] == "flag --github-scopes"
    assert loaded.sources["url"] == "default"


def test_an_empty_variable_clears_only_an_empty_default() -> None:
    """An empty variable sets a setting whose default is empty to empty,
    and is ignored for any other setting."""
    loaded = SPEC.load(env={"VK_TOY_PORT": "", "VK_OTHER_URL": "", "VK_TOY_GITHUB_SCOPES": ""})
    assert loaded.settings == Toy()
    assert loaded.sources["url"] == "env VK_OTHER_URL"
    assert loaded.sources["port"] == loaded.sources["github.scopes"] == "default"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VK_TOY_PORT": "0"}, "VK_TOY_PORT"),
        ({"VK_TOY_PORT": "many"}, "VK_TOY_PORT"),
        ({"VK_OTHER_URL": "forbidden"}, "VK_OTHER_URL"),
        ({"VK_TOY_API_TOKEN": "short-secret"}, "VK_TOY_API_TOKEN"),
        ({"VK_TOY_GITHUB_CLIENT_ID": "a\x00b"}, "VK_TOY_GITHUB_CLIENT_ID"),
    ],
)
def test_errors_name_the_variable_on_one_line(env: dict[str, str], named: str) -> None:
    """A value that does not convert, breaks a constraint or a cross-field rule, or holds a NUL
    is a SettingsError of one line naming its variable; a secret's value is not repeated."""
    with pytest.raises(SettingsError) as caught:
        SPEC.load(env=env)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message
    assert "short-secret" not in message


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    """An unknown key in the file (also inside a section) or an unknown flag is refused."""
    conf = tmp_path / "toy.toml"
    conf.write_text("[github]\nclient = 1\n")
    with pytest.raises(SettingsError, match=r"github\.client"):
        SPEC.load(env={}, config_file=conf)
    with pytest.raises(SettingsError, match="prot"):
        SPEC.load(env={}, overrides={"prot": 1})
