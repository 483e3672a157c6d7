"""``vk-node doctor [--json]``: is this machine ready to run a node?

Each check is one :class:`Check` — ``ok``, ``warn`` or ``fail`` with a one-line detail and, when
not ``ok``, what to do about it:

- ``git``: on PATH, with its version (the executor cannot make worktrees without it: ``fail``).
- ``gh``: the GitHub CLI on PATH with its version, and ``gh auth status`` logged in. Only pull
  requests need it, so a missing ``gh`` is a ``warn``; one that is there but not logged in is a
  ``fail`` (pull requests would fail).
- ``executor NAME``: every executor this node would offer — those of ``VK_NODE_EXECUTORS`` and
  every coding agent whose CLI is on PATH — with the CLI's ``--version`` where it answers one. An
  enabled agent whose CLI is missing is a ``fail``; no executor at all is a ``warn``.
- ``data dir``: the data dir (or, before the first start, its nearest existing parent) is
  writable; ``disk space``: free space there (``warn`` under 1 GiB).
- For each hive of ``VK_HIVE_URL`` (a comma list): ``hive URL`` — ``GET /v1/health`` answers
  (its version and protocol); ``hive key URL`` — the node API key is accepted (``GET
  /v1/sync/tasks`` with the key as Bearer: 200 for a key bound to a node, the 403 "not bound yet"
  for a fresh key, 401 for an unknown or revoked key); ``hive clock URL`` — the hive's ``Date``
  header against this node's clock (``warn`` beyond 5 s; leases use the monotonic clock, but
  timestamps and tokens do not). A standalone node (no ``VK_HIVE_URL``) has one ``hive`` line.

The exit status is 0 when no check failed (warnings allowed) and 1 otherwise. Nothing here writes
to the store or contacts the hive's WebSocket, and no secret is printed.
"""

from __future__ import annotations

import email.utils
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx
import msgspec

from vk_node.executor.profiles import UnknownExecutor, all_profiles, get_profile
from vk_node.link.identity import http_base_url
from vk_node.settings import NodeSettings
from vk_shared.protocol import PROTOCOL_VERSION

__all__ = ["Check", "collect_checks", "disk_check", "render", "run_doctor"]

Status = Literal["ok", "warn", "fail"]

MIN_FREE_BYTES = 1024**3
"""Less free space than this in the data dir is a warning."""
MAX_CLOCK_SKEW_S = 5.0
_COMMAND_TIMEOUT_S = 10.0
_HTTP_TIMEOUT_S = 5.0
_GH_INSTALL = "install the GitHub CLI (https://cli.github.com) to open pull requests"


class Check(msgspec.Struct, frozen=True):
    check: str
    status: Status
    detail: str
    fix: str = ""
    """What to do about a ``warn`` or ``fail`` (empty for ``ok``)."""


def _run(argv: list[str]) -> tuple[int, str] | None:
    """Exit status and first output line of ``argv`` (stdin closed); ``None`` when it cannot be
    started or does not finish in time."""
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command (git, gh, an agent CLI), no shell
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines()]
    return done.returncode, next((line for line in lines if line), "")[:200]


def _version(executable: str) -> str:
    """``<path>, <first line of --version>`` (or that the version is unknown)."""
    path = shutil.which(executable) or executable
    answer = _run([path, "--version"])
    if answer is None or answer[0] != 0 or not answer[1]:
        return f"{path} (version unknown)"
    return f"{path}, {answer[1]}"


# --- tools on PATH -------------------------------------------------------------------------------


def _git() -> Check:
    if shutil.which("git") is None:
        return Check("git", "fail", "git not found on PATH", "install git (https://git-scm.com)")
    return Check("git", "ok", _version("git"))


def _gh() -> list[Check]:
    if shutil.which("gh") is None:
        return [
            Check("gh", "warn", "gh not found on PATH (pull requests unavailable)", _GH_INSTALL)
        ]
    checks = [Check("gh", "ok", _version("gh"))]
    answer = _run(["gh", "auth", "status"])
    if answer is not None and answer[0] == 0:
        checks.append(Check("gh auth", "ok", "logged in to GitHub"))
    else:
        said = answer[1] if answer is not None else "gh auth status did not answer"
        checks.append(
            Check(
                "gh auth",
                "fail",
                f"not logged in ({said})",
                "run `gh auth login` (or set GH_TOKEN for the node)",
            )
        )
    return checks


def _executors(settings: NodeSettings) -> list[Check]:
    enabled = set(settings.executors)
    checks: list[Check] = []
    for name in sorted(enabled):
        try:
            get_profile(name)
        except UnknownExecutor as exc:
            checks.append(Check(f"executor {name}", "fail", str(exc), "fix VK_NODE_EXECUTORS"))
    for profile in all_profiles():
        label = f"executor {profile.name}"
        if profile.executable is None:
            if profile.name in enabled:
                checks.append(Check(label, "ok", "built in"))
        elif shutil.which(profile.executable) is not None:
            checks.append(Check(label, "ok", _version(profile.executable)))
        elif profile.name in enabled:
            checks.append(
                Check(
                    label,
                    "fail",
                    f"{profile.executable} not found on PATH",
                    f"install {profile.executable} or remove {profile.name} from VK_NODE_EXECUTORS",
                )
            )
    if not checks:
        agents = ", ".join(sorted(p.executable for p in all_profiles() if p.executable))
        checks.append(
            Check(
                "executors",
                "warn",
                "no executor: no coding agent CLI on PATH and none enabled",
                f"install a coding agent CLI ({agents}) or set VK_NODE_EXECUTORS=SCRIPT",
            )
        )
    return checks


# --- the data dir --------------------------------------------------------------------------------


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _data_dir(settings: NodeSettings) -> Check:
    path = settings.data_path
    fix = f"make {path} writable by this user, or set VK_NODE_DATA_DIR"
    if path.exists():
        try:
            fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=path)
        except OSError as exc:
            return Check("data dir", "fail", f"{path} is not writable ({exc.strerror})", fix)
        os.close(fd)
        os.unlink(probe)
        return Check("data dir", "ok", f"{path} is writable")
    parent = _existing(path)
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("data dir", "ok", f"{path} will be created (in {parent}, writable)")
    return Check("data dir", "fail", f"{path} cannot be created ({parent} is not writable)", fix)


def disk_check(free_bytes: int, where: Path) -> Check:
    """Free space in the data dir: ``warn`` under :data:`MIN_FREE_BYTES`."""
    detail = f"{free_bytes / 1024**3:.1f} GiB free in {where}"
    if free_bytes < MIN_FREE_BYTES:
        return Check(
            "disk space", "warn", detail, "free some space (worktrees and logs grow with runs)"
        )
    return Check("disk space", "ok", detail)


def _disk(settings: NodeSettings) -> Check:
    where = _existing(settings.data_path)
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return Check("disk space", "warn", f"cannot read free space of {where} ({exc.strerror})")
    return disk_check(free, where)


# --- the hives -----------------------------------------------------------------------------------


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}" + (f": {detail}" if isinstance(detail, str) else "")


def _clock(url: str, response: httpx.Response, local: float) -> Check:
    label = f"hive clock {url}"
    header = response.headers.get("date")
    parsed = email.utils.parsedate_to_datetime(header) if header else None
    if parsed is None or parsed.tzinfo is None:
        return Check(label, "warn", "the hive sent no Date header; skew unknown")
    skew = parsed.timestamp() - local
    detail = f"the hive's clock is {abs(skew):.1f} s {'ahead' if skew >= 0 else 'behind'}"
    if abs(skew) > MAX_CLOCK_SKEW_S:
        return Check(
            label,
            "warn",
            f"{detail} (more than {MAX_CLOCK_SKEW_S:.0f} s)",
            "synchronise the clocks of both machines (NTP)",
        )
    return Check(label, "ok", detail)


def _key(http: httpx.Client, url: str, api_key: str) -> Check:
    label = f"hive key {url}"
    if not api_key:
        return Check(
            label,
            "fail",
            "no node API key (VK_NODE_API_KEY is empty)",
            "create a node API key on the hive (`vk-hive admin create-api-key`) and set "
            "VK_NODE_API_KEY",
        )
    try:
        response = http.get("/v1/sync/tasks", headers={"Authorization": f"Bearer {api_key}"})
    except httpx.HTTPError as exc:
        return Check(label, "fail", f"no answer ({type(exc).__name__})", "retry; check the hive")
    said = _problem(response)
    if response.status_code == 200:
        return Check(label, "ok", "accepted (bound to a node)")
    if response.status_code == 403 and "not bound" in said:
        return Check(
            label, "ok", "accepted (not bound to a node yet: the first connection binds it)"
        )
    return Check(
        label,
        "fail",
        f"rejected ({said})",
        "set VK_NODE_API_KEY to a current key of the hive's organization (keys are shown once "
        "when created; a revoked or blocked key needs a new one)",
    )


def _hive(url: str, api_key: str, clock: Callable[[], float]) -> list[Check]:
    base = http_base_url(url)
    fix = f"check VK_HIVE_URL ({url}) and that `vk-hive serve` runs there"
    with httpx.Client(base_url=base, timeout=_HTTP_TIMEOUT_S) as http:
        started = clock()
        try:
            response = http.get("/v1/health")
        except httpx.HTTPError as exc:
            return [Check(f"hive {url}", "fail", f"unreachable ({type(exc).__name__}: {exc})", fix)]
        local = (started + clock()) / 2
        try:
            health = response.json()
        except ValueError:
            health = None
        if not isinstance(health, dict) or "protocol_version" not in health:
            return [Check(f"hive {url}", "fail", f"not a hive ({_problem(response)})", fix)]
        if response.status_code != 200:
            reach = Check(
                f"hive {url}",
                "fail",
                f"degraded (database {health.get('database')})",
                "the hive cannot reach its database: check the hive's logs",
            )
        elif health.get("protocol_version") != PROTOCOL_VERSION:
            reach = Check(
                f"hive {url}",
                "fail",
                f"speaks protocol {health.get('protocol_version')}, this node {PROTOCOL_VERSION}",
                "upgrade the older of the two",
            )
        else:
            reach = Check(f"hive {url}", "ok", f"reachable, version {health.get('version')}")
        return [reach, _key(http, url, api_key), _clock(url, response, local)]


def _hives(settings: NodeSettings) -> list[Check]:
    if not settings.hive_urls:
        return [Check("hive", "ok", "standalone (VK_HIVE_URL is not set)")]

    def clock() -> float:  # the hive link's wall clock
        return time.time() + settings.clock_skew_s

    checks: list[Check] = []
    for url in settings.hive_urls:
        checks.extend(_hive(url, settings.api_key, clock))
    return checks


# --- all of it -----------------------------------------------------------------------------------


def collect_checks(settings: NodeSettings) -> list[Check]:
    """Every check, in the order printed."""
    return [
        _git(),
        *_gh(),
        *_executors(settings),
        _data_dir(settings),
        _disk(settings),
        *_hives(settings),
    ]


def render(checks: list[Check]) -> str:
    """One line per check, then a count."""
    lines = []
    for check in checks:
        line = f"{check.status:<4}  {check.check}: {check.detail}"
        if check.fix:
            line += f"; fix: {check.fix}"
        lines.append(line)
    counts = {status: sum(c.status == status for c in checks) for status in ("ok", "warn", "fail")}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed")
    return "\n".join(lines)


def run_doctor(settings: NodeSettings, *, as_json: bool) -> int:
    """Print the checks (text or a JSON list); the number that failed."""
    checks = collect_checks(settings)
    if as_json:
        print(json.dumps(msgspec.to_builtins(checks), indent=2, ensure_ascii=False))
    else:
        print(render(checks))
    return sum(check.status == "fail" for check in checks)
