"""The desk's web pages: ``/desk`` (agents), ``/wallboard`` and ``/interactions``
(supervisors: the interaction list, playing recordings).

The pages and their scripts are public (no token to fetch them; the login form
is on the page); everything they show comes through ``POST /api/login``, the
token-guarded REST API and the ``/desk`` Socket.IO namespace. The composition
root must let ``PUBLIC_PAGES`` and ``ASSETS`` through its authentication.

Every page is sent with a Content-Security-Policy that allows only this
origin's scripts and styles (no inline script, no ``eval``), as a second line
behind the pages' rule of inserting customer and e-mail text with
``textContent`` only. ``media-src 'self'``: recordings play from this origin's
signed ``/recordings/media/`` URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

__all__ = ["ASSETS", "CSP", "PUBLIC_PAGES", "STATIC", "routes"]

STATIC: Final = Path(__file__).parent / "static"
PUBLIC_PAGES: Final = ("/desk", "/wallboard", "/interactions")
ASSETS: Final = "/desk/static/"

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> Handler:
    path = STATIC / name

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=_HEADERS)

    return handler


def routes() -> list[web.AbstractRouteDef]:
    """``GET /desk``, ``GET /wallboard``, ``GET /interactions`` and the scripts and styles under
    ``/desk/static/`` (the vendored socket.io client included)."""
    return [
        web.get("/desk", _page("desk.html")),
        web.get("/wallboard", _page("wallboard.html")),
        web.get("/interactions", _page("interactions.html")),
        web.static(ASSETS, STATIC, append_version=False),
    ]
