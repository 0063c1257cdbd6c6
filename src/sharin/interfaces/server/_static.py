"""The browser UI's files: the built single-page application, served at ``/``.

The bundle is built from ``webapp/`` into ``static/`` next to this module (the wheel and the
sdist carry it; a checkout builds it with ``npm ci && npm run build`` in ``webapp/``). Any path
that is not the API's and names no file of the bundle gets ``index.html``, whose script shows
the screen the address names. Without a bundle, ``/`` says how to build it. The token gate
around the application guards these files as it guards the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

__all__ = ["STATIC", "add_static_routes"]

#: where the build of ``webapp/`` goes
STATIC = Path(__file__).with_name("static")

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sharin: the UI is not built</title></head>
<body style="font-family: sans-serif; max-width: 44em; margin: 3em auto">
<h1>sharin's browser UI is not built</h1>
<p>This copy of sharin was installed without the browser UI's files
(<code>{where}</code> holds no <code>index.html</code>). The server's API works without them.</p>
<p>To build the UI from a checkout of sharin (Node.js 20.19 or later and npm are needed):</p>
<pre>cd webapp
npm ci
npm run build</pre>
<p>or reinstall from the checkout with <code>pip install .</code>, which builds it when it is
missing. Then reload this page.</p>
</body></html>
"""


def _file(directory: Path, rel: str) -> Path | None:
    """The bundle's file at ``rel``, or None (also for any path leaving ``directory``)."""
    if not rel or "\\" in rel or "\x00" in rel:
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = directory.joinpath(*parts)
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(directory.resolve()) or not real.is_file():
            return None
    except OSError:
        return None
    return real


def add_static_routes(app: FastAPI, directory: Path = STATIC) -> None:
    """Serve the bundle in ``directory`` at ``/``; add this after the API's routes."""

    def index() -> Response:
        page = directory / "index.html"
        if not page.is_file():
            return HTMLResponse(_MISSING.format(where=directory), status_code=503)
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return index()

    @app.get("/{rel:path}", include_in_schema=False)
    def static_file(rel: str) -> Any:
        if rel == "api" or rel.startswith("api/"):
            return JSONResponse({"error": f"/{rel}: no such API endpoint"}, status_code=404)
        found = _file(directory, rel)
        if found is None:
            return index()
        # the bundle's assets carry a hash of their content in their names
        cache = "public, max-age=31536000, immutable" if rel.startswith("assets/") else "no-cache"
        return FileResponse(found, headers={"Cache-Control": cache})
