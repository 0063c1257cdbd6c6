"""The UI in the package: the sdist carries the built bundle and webapp/'s sources (not its
node_modules), a wheel built from it elsewhere needs no Node, and without Node a missing bundle
is one clear error (or, with SHARIN_NO_WEBAPP=1, a package without the UI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharin.interfaces.server._static import STATIC

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sdist built from this checkout, unpacked in a directory of its own."""
    if not (STATIC / "index.html").is_file():
        reason = f"the UI is not built ({STATIC}): npm --prefix webapp ci && npm --prefix webapp run build"
        if os.environ.get("SHARIN_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)
    if not (REPO / "setup.py").is_file():
        pytest.skip("not a checkout of sharin")
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (sdist,) = out.glob("sharin-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = t.getnames()
        t.extractall(out, filter="data")
    assert not [n for n in names if "node_modules" in n]
    assert any(n.endswith("/webapp/package-lock.json") for n in names)
    assert any(n.endswith("/interfaces/server/static/index.html") for n in names)
    yield next(out.glob("sharin-*/"))


def _wheel(src: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    empty = out / "empty-path"
    empty.mkdir(parents=True)
    environ = {**os.environ, "PATH": str(empty), **env}  # no node, no npm
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        env=environ,
        capture_output=True,
        text=True,
    )


def test_a_wheel_built_from_the_sdist_elsewhere_carries_the_ui_without_node(
    unpacked: Path, tmp_path: Path
) -> None:
    r = _wheel(unpacked, tmp_path / "wheel")
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp_path / "wheel").glob("sharin-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert "sharin/interfaces/server/static/index.html" in names
    assert any(n.startswith("sharin/interfaces/server/static/assets/") for n in names)


def test_without_node_a_missing_bundle_is_one_clear_error(unpacked: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(unpacked, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    shutil.rmtree(src / "src" / "sharin" / "interfaces" / "server" / "static")
    r = _wheel(src, tmp_path / "wheel")
    assert r.returncode != 0
    assert "needs Node.js 20.19 or later and npm" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not list((tmp_path / "wheel").glob("*.whl"))
    r = _wheel(src, tmp_path / "wheel2", SHARIN_NO_WEBAPP="1")
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp_path / "wheel2").glob("sharin-*.whl")
    assert not [n for n in zipfile.ZipFile(whl).namelist() if "/static/" in n]
