"""The build step of the browser UI; pyproject.toml holds everything else about the package.

The UI's bundle (``src/sharin/interfaces/server/static``) is built from ``webapp/`` with
``npm ci && npm run build`` before the package's files are collected, when it is missing: so
``pip install .`` from a checkout builds it (Node.js 20.19 or later and npm needed), and the sdist
and the wheel carry it (an sdist unpacked elsewhere builds a wheel without Node).
``SHARIN_NO_WEBAPP=1`` builds without the UI (its server's `/` then says how to build it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
WEBAPP = HERE / "webapp"
STATIC = HERE / "src" / "sharin" / "interfaces" / "server" / "static"
NODE = (20, 19)  #: what Vite needs
NODE_TEXT = "Node.js 20.19 or later"


def _fail(message: str) -> None:
    raise SystemExit(f"sharin: {message}")


def build_webapp() -> None:
    """Build the UI's bundle into STATIC unless it is there already."""
    if (STATIC / "index.html").is_file():
        return
    if os.environ.get("SHARIN_NO_WEBAPP"):
        print("sharin: SHARIN_NO_WEBAPP is set: building without the browser UI")
        return
    if not (WEBAPP / "package-lock.json").is_file():
        _fail(
            f"the browser UI is not built ({STATIC} has no index.html) and its sources "
            f"({WEBAPP}) are not here; build from a checkout, or set SHARIN_NO_WEBAPP=1 to "
            "build without the UI"
        )
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _fail(
            f"building the browser UI needs {NODE_TEXT} and npm "
            "(e.g. apt-get install nodejs npm); or set SHARIN_NO_WEBAPP=1 to build without the UI"
        )
    assert node is not None and npm is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"v(\d+)\.(\d+)\.", version)
    if m is None or (int(m.group(1)), int(m.group(2))) < NODE:
        _fail(f"building the browser UI needs {NODE_TEXT}; {node} is {version or 'unknown'}")
    print(f"sharin: building the browser UI in {WEBAPP} (npm ci && npm run build)")
    for args in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
        if subprocess.run(args, cwd=WEBAPP).returncode != 0:
            _fail(f"`{' '.join(args[1:])}` failed in {WEBAPP}; see npm's messages above")
    if not (STATIC / "index.html").is_file():
        _fail(f"`npm run build` made no {STATIC / 'index.html'}")


class BuildWebapp(Command):
    """``python setup.py build_webapp``: build the browser UI when it is missing."""

    description = "build the browser UI (webapp/) when its bundle is missing"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        build_webapp()


class BuildPy(build_py):
    def run(self) -> None:
        build_webapp()
        super().run()


class Sdist(sdist):
    def run(self) -> None:
        build_webapp()
        super().run()


setup(cmdclass={"build_webapp": BuildWebapp, "build_py": BuildPy, "sdist": Sdist})
