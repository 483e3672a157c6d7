"""``GET /static/{name}``: the board's own CSS and JavaScript, from this package.

Only the files that ship in ``web/static`` are served, by exact name (read once when the app is
built): no path is ever joined from the URL, so no traversal, overlong or NUL-byte name reaches
the file system; any other name is a 404.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from vk_node.errors import NotFound

__all__ = ["STATIC_DIR", "static_handler"]

STATIC_DIR = Path(__file__).parent / "static"

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def _files(directory: Path) -> dict[str, tuple[bytes, str]]:
    return {
        path.name: (path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(directory.iterdir())
        if path.is_file() and path.suffix in _TYPES
    }


def static_handler(directory: Path = STATIC_DIR) -> HTTPRouteHandler:
    files = _files(directory)

    @get("/static/{name:str}", name="board:static", include_in_schema=False, sync_to_thread=False)
    def static(name: FromPath[str]) -> Response[bytes]:
        found = files.get(name)
        if found is None:
            raise NotFound(f"no static file {name[:100]!r}")
        body, media_type = found
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return static
