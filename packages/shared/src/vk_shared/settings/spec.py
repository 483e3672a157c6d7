"""How a service's settings are named and loaded: one frozen msgspec Struct, built from
defaults < TOML file < environment < CLI flags, every value's source kept.

Invariants:

- Every setting has exactly one environment variable, derived from its name: the service's
  prefix and the name in upper case (``port`` -> ``VK_NODE_PORT``); a setting of a nested Struct
  adds the section (``github.client_id`` -> ``VK_HIVE_GITHUB_CLIENT_ID``). A service lists the
  few names its public contract fixes otherwise (the node's ``hive_url`` is ``VK_HIVE_URL``).
- Each value is converted to its field's type (and checked against its constraints) where it
  enters, so an invalid value is a :class:`SettingsError` of one line naming its variable (or
  the file key, or the flag). A secret (a name of :data:`vk_shared.logkit.SECRET_KEYS`) is never
  repeated in an error.
- An empty variable sets a setting whose default is empty (``""``, no list) to empty; for any
  other setting it counts as unset (``VK_NODE_PORT=`` in an env file changes nothing).
- A list setting's variable is a comma list; blanks are dropped.

Nothing here reads the environment on import: :meth:`SettingsSpec.load` takes it as an argument
(``os.environ`` when omitted), so several services can live in one process.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

from vk_shared.logkit import is_secret_key

__all__ = ["Loaded", "SettingsError", "SettingsSpec"]

S = TypeVar("S", bound=msgspec.Struct)


class SettingsError(ValueError):
    """Settings that cannot be used; the message is one line naming the setting's variable.

    ``setting`` is the setting's name (``port``, ``github.client_id``) when one setting is at
    fault; :meth:`SettingsSpec.load` then names where its value came from."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class Loaded(msgspec.Struct, Generic[S], frozen=True):
    """The settings and, per setting, where its value came from (``default``, ``file PATH``,
    ``env VK_NODE_PORT``, ``flag --port``)."""

    settings: S
    sources: dict[str, str]


Finish = Callable[[dict[str, Any], dict[str, str], Mapping[str, str]], None]
"""Fills in values that depend on the environment (a per-user directory, the host name) after
the layers are merged: ``finish(values, sources, env)`` may change both dicts."""


@dataclass(frozen=True)
class _Setting:
    path: str
    """``port`` or ``github.client_id``."""
    type: Any
    default: Any
    env: str

    @property
    def secret(self) -> bool:
        return is_secret_key(self.path.rpartition(".")[2])

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.type) in (tuple, list)

    @property
    def clearable(self) -> bool:
        return self.default in ("", ())

    @property
    def flag(self) -> str:
        return "--" + self.path.replace(".", "-").replace("_", "-")


def _default_of(f: msgspec.structs.FieldInfo) -> Any:
    if f.default is not msgspec.NODEFAULT:
        return f.default
    if f.default_factory is not msgspec.NODEFAULT:
        return f.default_factory()
    return msgspec.NODEFAULT


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


@dataclass(frozen=True)
class SettingsSpec(Generic[S]):
    """The settings of one service: its Struct, its variable names, its file conventions."""

    model: type[S]
    prefix: str
    """``VK_NODE_`` / ``VK_HIVE_``."""
    config_env: str
    """The variable naming the optional TOML file (``VK_NODE_CONFIG``)."""
    section: str = ""
    """A TOML table of this name is read as top-level keys (``[node]`` in a shared file)."""
    env_exceptions: Mapping[str, str] = field(default_factory=dict)
    """Setting -> variable where the contract fixes another name than the derived one."""
    normalize: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    """Setting -> function applied to a raw value before conversion."""
    finish: Finish | None = None

    # --- names ---------------------------------------------------------------------------------

    def settings(self) -> dict[str, _Setting]:
        """Every setting by name, nested Structs flattened (``github.client_id``)."""
        out: dict[str, _Setting] = {}
        for f in msgspec.structs.fields(self.model):
            default = _default_of(f)
            if _is_struct(f.type):
                for sub in msgspec.structs.fields(f.type):
                    path = f"{f.name}.{sub.name}"
                    sub_default = getattr(default, sub.name, _default_of(sub))
                    out[path] = _Setting(path, sub.type, sub_default, self._env_name(path))
            else:
                out[f.name] = _Setting(f.name, f.type, default, self._env_name(f.name))
        return out

    def _env_name(self, path: str) -> str:
        return self.env_exceptions.get(path) or self.prefix + path.replace(".", "_").upper()

    def env_names(self) -> dict[str, str]:
        """Setting -> environment variable, for every setting."""
        return {path: s.env for path, s in self.settings().items()}

    # --- loading -------------------------------------------------------------------------------

    def load(
        self,
        *,
        env: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Loaded[S]:
        """Build the settings: defaults < TOML ``config_file`` (else the file the
        ``config_env`` variable names) < ``env`` (default: ``os.environ``, read now) <
        ``overrides`` (CLI flags by setting name; ``None`` values are ignored; a nested Struct's
        override is a mapping or a Struct)."""
        environ = os.environ if env is None else env
        known = self.settings()
        values: dict[str, Any] = {}
        sources = dict.fromkeys(known, "default")
        origins: dict[str, str] = {}

        def put(path: str, raw: Any, origin: str, source: str) -> None:
            setting = known.get(path)
            if setting is None:
                raise SettingsError(f"unknown setting {path!r} ({origin})")
            values[path] = self._convert(setting, raw, origin)
            sources[path], origins[path] = source, origin

        file = config_file if config_file is not None else environ.get(self.config_env) or None
        if file is not None:
            path = Path(file).expanduser()
            for key, raw in _flatten(self._read_file(path), known):
                put(key, raw, f"setting {key!r} in {path}", f"file {path}")
        for key, setting in known.items():
            raw = environ.get(setting.env)
            if raw is not None and (raw != "" or setting.clearable):
                put(key, raw, setting.env, f"env {setting.env}")
        for key, raw in _flatten(overrides or {}, known):
            if raw is not None:
                flag = known[key].flag if key in known else f"--{key}"
                put(key, raw, flag, f"flag {flag}")

        if self.finish is not None:
            self.finish(values, sources, environ)
        try:
            settings = self._build(values)
        except SettingsError as exc:
            if exc.setting is None:
                raise
            where = origins.get(exc.setting) or known[exc.setting].env
            raise SettingsError(f"{where}: {exc}", setting=exc.setting) from None
        except (TypeError, ValueError) as exc:
            raise SettingsError(str(exc).splitlines()[0]) from None
        return Loaded(settings=settings, sources=sources)

    def _convert(self, setting: _Setting, value: Any, origin: str) -> Any:
        """One value converted to its setting's type; errors name ``origin``."""
        normalize = self.normalize.get(setting.path)
        if setting.is_list and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if normalize is not None:
            value = normalize(value)
        if isinstance(value, str) and "\x00" in value:
            raise SettingsError(f"{origin}: NUL bytes are not allowed", setting=setting.path)
        try:
            return msgspec.convert(value, setting.type, strict=False)
        except msgspec.ValidationError as exc:
            if setting.secret:  # never echo a secret, not even a malformed one
                raise SettingsError(
                    f"{origin}: invalid value: {exc}", setting=setting.path
                ) from None
            raise SettingsError(
                f"{origin}: invalid value {value!r}: {exc}", setting=setting.path
            ) from None

    def _read_file(self, path: Path) -> dict[str, Any]:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"config file {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None
        own = data.pop(self.section, None) if self.section else None
        if isinstance(own, dict):
            data = {**data, **own}
        return data

    def _build(self, values: Mapping[str, Any]) -> S:
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for path, value in values.items():
            section, _, name = path.rpartition(".")
            if section:
                nested.setdefault(section, {})[name] = value
            else:
                top[name] = value
        defaults = self.model()
        for section, fields in nested.items():
            top[section] = msgspec.structs.replace(getattr(defaults, section), **fields)
        return self.model(**top)


def _flatten(layer: Mapping[str, Any], known: Mapping[str, _Setting]) -> list[tuple[str, Any]]:
    """``{"github": {"client_id": x}}`` -> ``[("github.client_id", x)]`` for nested Structs."""
    out: list[tuple[str, Any]] = []
    for key, value in layer.items():
        if isinstance(value, msgspec.Struct):
            value = msgspec.structs.asdict(value)
        if isinstance(value, Mapping) and key not in known:
            out.extend((f"{key}.{sub}", sub_value) for sub, sub_value in value.items())
        else:
            out.append((key, value))
    return out
