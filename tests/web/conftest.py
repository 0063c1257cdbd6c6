"""The browser UI driven by a real Chromium (Playwright) against `sharin ui` in a subprocess.

The tests need Playwright for Python, Debian's ``/usr/bin/chromium`` (``apt-get install
chromium``; Playwright's own browser download is not used) and the built UI
(``src/sharin/interfaces/server/static``, made by ``npm run build`` in ``webapp/``). Without one
of them they are skipped, or fail when SHARIN_REQUIRE_ALL is set (as scripts/test.sh does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sharin.interfaces.server._static import STATIC

CHROMIUM = os.environ.get("SHARIN_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not (STATIC / "index.html").is_file():
        return f"the UI is not built ({STATIC}): npm --prefix webapp ci && npm --prefix webapp run build"
    return None


@pytest.fixture(autouse=True)
def _browser_available(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("browser") is None:
        return
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("SHARIN_REQUIRE_ALL"):
        pytest.fail(f"{reason}, and SHARIN_REQUIRE_ALL is set")
    pytest.skip(reason)


@dataclass
class Server:
    url: str  #: the URL `sharin ui` printed, with its token
    base: str  #: scheme, host and port
    token: str
    workspace: Path
    proc: subprocess.Popen[str]


@contextlib.contextmanager
def start_server(ws: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`sharin ui --no-browser --workspace WS` in a subprocess (``env`` added to its
    environment: the tasks it runs inherit it), stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sharin", "ui", "--no-browser", "--workspace", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("sharin UI: http://"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        url = line.split(": ", 1)[1].strip()
        base, token = url.split("/?token=")
        yield Server(url, base, token, ws, proc)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    ws = tmp_path / "ws"
    ws.mkdir()
    with start_server(ws) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()
