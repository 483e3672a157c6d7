"""The files under deploy/ agree with the code: the hive image, the compose file, the node's
systemd unit and the example environment files (every setting, with its real default)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from vk_hive import settings as hive_settings
from vk_hive.cli import build_parser as hive_parser
from vk_node import settings as node_settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
HIVE_ENV = DEPLOY / "hive.env.example"
NODE_ENV = DEPLOY / "node" / "vk-node.env.example"
UNIT = DEPLOY / "node" / "vk-node.service"

# DESIGN.md §9 and §10: the settings scripts and users rely on, with the defaults it names.
CONTRACT_HIVE = {
    "VK_HIVE_DATABASE_URL": None,
    "VK_HIVE_HOST": "127.0.0.1",
    "VK_HIVE_PORT": "9000",
    "VK_HIVE_JWT_SECRET": None,
    "VK_HIVE_LEASE_TTL_S": "60",
    "VK_HIVE_LEASE_GRACE_S": None,
    "VK_HIVE_HEARTBEAT_TIMEOUT_S": "90",
    "VK_HIVE_LOG_FORMAT": None,
}
CONTRACT_NODE = {
    "VK_NODE_DATA_DIR": None,
    "VK_NODE_HOST": "127.0.0.1",
    "VK_NODE_PORT": "3000",
    "VK_HIVE_URL": None,
    "VK_NODE_API_KEY": None,
    "VK_NODE_NAME": None,
    "VK_NODE_PUBLIC_URL": None,
    "VK_NODE_EXECUTORS": None,
    "VK_NODE_MAX_CONCURRENT": "1",
    "VK_NODE_LOG_FORMAT": None,
    "VK_NODE_MACHINE_ID": None,
    "VK_NODE_API_TOKEN": None,
}
# The names the contract fixes otherwise than VK_<SERVICE>_<SETTING>.
EXCEPTIONS = {"node": {"hive_url": "VK_HIVE_URL"}, "hive": {}}


def hive_env_names() -> set[str]:
    """Every environment variable the hive's settings loader reads."""
    return set(hive_settings.ENV_NAMES.values())


def node_env_names() -> set[str]:
    """Every environment variable the node's settings loader reads."""
    return set(node_settings.ENV_NAMES.values())


# --- example env files ---------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>VK_[A-Z0-9_]+)=(?P<value>.*)$")


@dataclass
class EnvExample:
    active: dict[str, str] = field(default_factory=dict)
    """``NAME=value`` lines: what a deployment sets."""
    defaults: dict[str, str] = field(default_factory=dict)
    """``# NAME=value`` lines: the documented built-in default."""

    @property
    def names(self) -> set[str]:
        return set(self.active) | set(self.defaults)


def parse_env_example(path: Path) -> EnvExample:
    """Split an example env file into set values and documented defaults; reject lines that
    neither systemd's EnvironmentFile nor compose's env_file read the same way."""
    out = EnvExample()
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        where = f"{path.name}:{number}"
        if not line.strip():
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            assert line.startswith("#"), f"{where}: neither a comment nor NAME=value: {line!r}"
            continue
        name, value = match["name"], match["value"]
        assert name not in out.names, f"{where}: {name} listed twice"
        assert not re.search(r"[\s\"'`$\\]", value), f"{where}: keep values plain: {value!r}"
        (out.defaults if match["comment"] else out.active)[name] = value
    return out


def _hive_load(env: Mapping[str, str]) -> hive_settings.HiveSettings:
    return hive_settings.load_settings(env=env)


def _node_load(env: Mapping[str, str], home: Path) -> node_settings.NodeSettings:
    return node_settings.load_settings(env={"HOME": str(home), **env}).settings


@pytest.mark.parametrize(
    ("service", "spec"), [("hive", hive_settings.SPEC), ("node", node_settings.SPEC)]
)
def test_every_setting_has_one_variable_named_after_it(service: str, spec: Any) -> None:
    """Each setting (a provider's too) has its own variable VK_<SERVICE>_<SETTING> — the section
    of a nested setting included — but for the contract's exceptions, and the loader reads that
    variable into that setting."""
    names: dict[str, str] = spec.env_names()
    assert len(set(names.values())) == len(names), "two settings share a variable"
    for setting, var in names.items():
        derived = f"VK_{service.upper()}_" + setting.replace(".", "_").upper()
        assert var == EXCEPTIONS[service].get(setting, derived), setting
    assert set(EXCEPTIONS[service]) <= set(names)
    fields = {f.name for f in msgspec.structs.fields(spec.model)}
    assert fields <= {setting.partition(".")[0] for setting in names}
    baseline = spec.load(env={"HOME": "/nonexistent"})
    defaults = msgspec.to_builtins(baseline.settings)
    for setting, var in names.items():
        section, _, name = setting.rpartition(".")
        default = defaults[section][name] if section else defaults[name]
        loaded = spec.load(env={var: _as_env(default), "HOME": "/nonexistent"})
        assert loaded.sources[setting] == f"env {var}"
        assert loaded.settings == baseline.settings, setting


def _as_env(value: Any) -> str:
    """A value written as an environment variable holds it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def test_hive_env_example_lists_exactly_the_hive_settings() -> None:
    """deploy/hive.env.example names every VK_HIVE_* variable the hive reads and nothing else."""
    example = parse_env_example(HIVE_ENV)
    known = hive_env_names()
    assert example.names - known == set(), "not hive settings"
    assert known - example.names == set(), f"add these to {HIVE_ENV.name}"


def test_node_env_example_lists_exactly_the_node_settings() -> None:
    """deploy/node/vk-node.env.example names every variable the node reads and nothing else."""
    example = parse_env_example(NODE_ENV)
    known = node_env_names()
    assert example.names - known == set(), "not node settings"
    assert known - example.names == set(), f"add these to {NODE_ENV.name}"


@pytest.mark.parametrize(
    ("path", "contract", "known"),
    [(HIVE_ENV, CONTRACT_HIVE, hive_env_names), (NODE_ENV, CONTRACT_NODE, node_env_names)],
    ids=["hive", "node"],
)
def test_contract_settings_exist_and_keep_their_documented_defaults(
    path: Path, contract: dict[str, str | None], known: Any
) -> None:
    """Every setting of the DESIGN.md §9 contract is read by the code and listed in the example,
    and the defaults the contract names are the ones the example documents."""
    example = parse_env_example(path)
    assert set(contract) - known() == set(), "contract names missing from the settings module"
    assert set(contract) - example.names == set(), f"contract names missing from {path.name}"
    for name, default in contract.items():
        if default is not None:
            assert example.defaults[name].removesuffix(".0") == default, name


def test_hive_env_example_documents_the_real_defaults() -> None:
    """Each commented `# VK_HIVE_X=value` line yields exactly the default settings, and the set
    values load."""
    example = parse_env_example(HIVE_ENV)
    baseline = _hive_load({})
    for name, value in example.defaults.items():
        assert _hive_load({name: value}) == baseline, f"{name}={value} is not the default"
    loaded = _hive_load(example.active)
    assert loaded.database_url == example.active["VK_HIVE_DATABASE_URL"]


def test_node_env_example_documents_the_real_defaults(tmp_path: Path) -> None:
    """Each commented `# VK_NODE_X=value` line yields exactly the default settings, and the set
    values load."""
    example = parse_env_example(NODE_ENV)
    baseline = _node_load({}, tmp_path)
    for name, value in example.defaults.items():
        assert _node_load({name: value}, tmp_path) == baseline, f"{name}={value} is not the default"
    loaded = _node_load(example.active, tmp_path)
    assert loaded.data_dir == example.active["VK_NODE_DATA_DIR"]
    assert loaded.standalone


# --- Dockerfile ----------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name}: no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Instructions of a Dockerfile: comments dropped, continuation lines joined, grouped by
    stage. Returns the global ARG defaults (before the first FROM) and the stages."""
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a continued instruction"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, statement in logical:
        keyword, _, args = statement.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m[1], m[0]), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(image=image, name=name))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may precede FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, line))
    return global_args, stages


def _env_instructions(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for token in shlex.split(instruction.args):
            key, sep, value = token.partition("=")
            assert sep, f"line {instruction.line}: use ENV KEY=value"
            env[key] = value
    return env


@pytest.fixture(scope="module")
def hive_image() -> list[Stage]:
    _, stages = parse_dockerfile((DEPLOY / "hive" / "Dockerfile").read_text("utf-8"))
    return stages


def test_hive_image_builds_wheels_and_ships_only_them(hive_image: list[Stage]) -> None:
    """The hive image has a builder stage that makes wheels of vk-shared and vk-hive and a
    python:3.11-slim runtime stage that installs those wheels without any source tree."""
    assert [s.name for s in hive_image] == ["builder", "runtime"]
    builder, runtime = hive_image
    assert builder.image == runtime.image == "python:3.11-slim"
    copied = " ".join(i.args for i in builder.all("COPY"))
    assert "packages/shared" in copied
    assert "packages/hive" in copied
    assert any("pip wheel" in i.args and "./packages/hive" in i.args for i in builder.all("RUN"))
    assert not runtime.all("COPY"), "the runtime stage copies nothing but mounts the wheels"
    installs = [i.args for i in runtime.all("RUN") if "pip install" in i.args]
    assert len(installs) == 1
    assert "from=builder" in installs[0]
    assert "--no-index" in installs[0]
    assert "/wheels/*.whl" in installs[0]


def test_hive_image_runs_serve_as_non_root_with_healthcheck(hive_image: list[Stage]) -> None:
    """The runtime stage runs `vk-hive serve` (which migrates first) as a non-root user on
    0.0.0.0:9000, exposes that port and checks /v1/health on it."""
    runtime = hive_image[-1]
    user = runtime.last("USER").args.split(":")[0]
    assert user not in ("root", "0", "")

    env = _env_instructions(runtime)
    assert env["VK_HIVE_HOST"] == "0.0.0.0"
    assert {k for k in env if k.startswith("VK_HIVE_")} <= hive_env_names()
    port = env["VK_HIVE_PORT"]
    assert runtime.last("EXPOSE").args.split() == [port]

    health = runtime.last("HEALTHCHECK").args
    assert health.split()[0].startswith("--") or health.startswith("CMD")
    assert "CMD" in health
    assert "/v1/health" in health
    assert "VK_HIVE_PORT" in health

    entrypoint = json.loads(runtime.last("ENTRYPOINT").args)
    command = json.loads(runtime.last("CMD").args)
    scripts = tomllib.loads((ROOT / "packages/hive/pyproject.toml").read_text("utf-8"))["project"][
        "scripts"
    ]
    assert entrypoint == ["vk-hive"]
    assert entrypoint[0] in scripts
    assert command == ["serve"]
    parser = hive_parser()
    assert parser.parse_args(command).command == "serve"
    assert "serve" in parser.format_help()
    assert "migrates the database first" in parser.format_help()


def test_hive_image_build_context_is_limited_to_the_packages() -> None:
    """The image's .dockerignore keeps only the two packages it builds in the context."""
    ignore = (DEPLOY / "hive" / "Dockerfile.dockerignore").read_text("utf-8").split()
    assert ignore[ignore.index("**") :][:3] == ["**", "!packages/shared/", "!packages/hive/"]


# --- compose -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_postgres_15_with_healthcheck_and_volume(compose: dict[str, Any]) -> None:
    """compose.yaml's PostgreSQL is postgres:15 with a pg_isready healthcheck and a named volume
    for its data directory."""
    pg = compose["services"]["postgres"]
    assert pg["image"] == "postgres:15"
    assert pg["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "pg_isready" in pg["healthcheck"]["test"][1]
    volume, _, target = pg["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]
    assert "ports" not in pg, "PostgreSQL is reachable only from the compose network"


def test_compose_hive_waits_for_healthy_postgres_and_uses_the_env_example(
    compose: dict[str, Any],
) -> None:
    """The compose hive builds deploy/hive/Dockerfile, starts after PostgreSQL is healthy, reads
    the env example, binds 0.0.0.0 in the container and reaches the compose database."""
    pg = compose["services"]["postgres"]["environment"]
    hive = compose["services"]["hive"]
    assert hive["depends_on"]["postgres"]["condition"] == "service_healthy"
    context = (DEPLOY / hive["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / hive["build"]["dockerfile"]) == DEPLOY / "hive" / "Dockerfile"

    env_files = [e["path"] for e in hive["env_file"] if e.get("required", True)]
    assert env_files == ["hive.env.example"]
    assert (DEPLOY / env_files[0]).is_file()

    env = hive["environment"]
    assert set(env) <= hive_env_names()
    assert env["VK_HIVE_HOST"] == "0.0.0.0"
    assert "VK_HIVE_JWT_SECRET" in env
    url = env["VK_HIVE_DATABASE_URL"]
    assert url.startswith(f"postgresql://{pg['POSTGRES_USER']}:")
    assert url.endswith(f"@postgres:5432/{pg['POSTGRES_DB']}")
    assert hive["ports"] == [f"127.0.0.1:{env['VK_HIVE_PORT']}:{env['VK_HIVE_PORT']}"]
    assert hive["command"] == ["serve"]


# --- systemd unit --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text("utf-8"))
    return parser


def _seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def test_node_unit_runs_serve_as_dedicated_user_with_env_file(
    unit: configparser.ConfigParser,
) -> None:
    """vk-node.service runs `vk-node serve` as the vk-node user with /etc/vk-node/vk-node.env,
    restarts on failure and starts at boot."""
    service = unit["Service"]
    assert service["User"] == "vk-node"
    assert service["Group"] == "vk-node"
    assert service["EnvironmentFile"] == "/etc/vk-node/vk-node.env"
    program, *args = service["ExecStart"].split()
    assert Path(program).name == "vk-node"
    assert args == ["serve"]
    assert service["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit["Unit"]["After"]


def test_node_unit_stops_gracefully_within_its_timeout(
    unit: configparser.ConfigParser,
) -> None:
    """KillMode=mixed sends SIGTERM to the node alone, and TimeoutStopSec leaves room for the
    node's default shutdown, run-stop grace and drain before systemd kills the rest."""
    service = unit["Service"]
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    defaults = node_settings.NodeSettings()
    needed = defaults.shutdown_timeout_s + defaults.stop_grace_s + defaults.exit_drain_s
    assert _seconds(service["TimeoutStopSec"]) >= needed + 30


def test_node_unit_hardening_keeps_the_data_dir_writable(
    unit: configparser.ConfigParser,
) -> None:
    """The unit is hardened (read-only system, no new privileges) yet the data dir of the env
    example is its writable state directory and home, and nothing breaks agent runtimes."""
    service = unit["Service"]
    data_dir = parse_env_example(NODE_ENV).active["VK_NODE_DATA_DIR"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert data_dir == "/var/lib/" + service["StateDirectory"]
    assert data_dir in service["ReadWritePaths"].split()
    assert service["WorkingDirectory"] == data_dir
    assert "MemoryDenyWriteExecute" not in service, "node.js based agent CLIs need W+X memory"


def test_deploy_files_are_utf8_text_ending_with_newline() -> None:
    """Every deploy file is UTF-8 text ending with a newline (so tools that append lines work)."""
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        text = path.read_text("utf-8")
        assert text.endswith("\n"), path
        assert "\t" not in text, path
