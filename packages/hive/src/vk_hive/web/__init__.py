"""The hive's browser pages (outside ``/v1``, not in the OpenAPI document): sign-in, the swarm
board, and their static files.

- :mod:`vk_hive.web.signin`: ``/login``, ``/login/{token}``, ``POST /logout`` and the headers
  every page carries;
- :mod:`vk_hive.web.pages`: ``/``, ``/projects/{id}``, ``/tasks/{id}``, ``/nodes``, rendered
  from ``templates/`` (Jinja2, autoescaped) with data read by :mod:`vk_hive.web.views`;
- ``static/``: the board's own CSS and ES modules, served at ``/static/<digest>/`` where the
  digest is a hash of the files' contents: a URL names one version of a file for ever, so it is
  cached as ``immutable``, and an upgraded hive's pages name new URLs (the modules import each
  other by relative URL, so they stay within one version).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import jinja2
from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from vk_hive.web.pages import board_page, home_page, nodes_page, task_page
from vk_hive.web.signin import login_page, logout, use_login_link
from vk_shared.jsoncheck import refuse_bad_request

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "static_digest", "template_config", "web_routers"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def static_digest(directory: Path = STATIC_DIR) -> str:
    """A short hash of every static file's name and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


_STATIC_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}\.(?:js|css)")
"""What a static file is called; any other name (a NUL byte, a path, a long name) is a 404
before the file system is asked."""


def _known_static_name(request: Request[Any, Any, Any]) -> None:
    if not _STATIC_NAME.fullmatch(request.scope["path"].rsplit("/", 1)[-1]):
        raise NotFoundException("no such static file")


def _nosniff(response: Any) -> Any:
    """Static files are served with the type their name says, never a sniffed one."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``12 s ago`` / ``3 min ago`` / ``2 h ago`` / ``4 d ago``; ``never`` for ``None``."""
    if value is None:
        return "never"
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - value).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def template_config(static_prefix: str) -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 over ``templates/`` with autoescaping on and undefined names as errors;
    ``static(name)`` gives a static file's versioned URL."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{static_prefix}/{name}"
    env.filters["age"] = _age
    env.filters["when"] = _when
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def web_routers(static_prefix: str) -> list[Router]:
    """The pages at the root and the static files under ``static_prefix``."""
    pages = Router(
        path="/",
        route_handlers=[
            use_login_link,
            login_page,
            logout,
            home_page,
            board_page,
            task_page,
            nodes_page,
        ],
        before_request=refuse_bad_request,
    )
    static = create_static_files_router(
        path=static_prefix,
        directories=[STATIC_DIR],
        cache_control=CacheControlHeader(public=True, max_age=365 * 86400, immutable=True),
        name="static",
        include_in_schema=False,
        before_request=_known_static_name,
        after_request=_nosniff,
    )
    return [pages, static]
