"""Shared fixtures: an isolated environment, projects built through the API, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import sharin
from sharin.interfaces import cli as cli_module

from .helpers import kill_group, pid_alive


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty WHEEL config directory, so the user's ~/.wheel/remotehost.json never leaks in."""
    d = tmp_path / "config"
    d.mkdir()
    monkeypatch.setenv("SHARIN_CONFIG_DIR", str(d))
    monkeypatch.delenv("WHEEL_CONFIG_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps long messages at 80 columns otherwise
    return d


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., sharin.Project]:
    """Build an empty project ``<tmp>/<name>.wheel`` through the API (a git repository)."""

    def make(name: str = "demo", description: str = "") -> sharin.Project:
        return sharin.new_project(tmp_path / name, description)

    return make


@pytest.fixture
def project(make_project: Callable[..., sharin.Project]) -> sharin.Project:
    """An empty project ``<tmp>/demo.wheel``."""
    return make_project()


class Cli:
    """Runs ``sharin`` in this process with click's CliRunner; checks the exit code."""

    def __call__(self, *args: object, code: int | None = 0) -> Result:
        argv = [str(a) for a in args]
        result = CliRunner().invoke(cli_module.cli, argv, catch_exceptions=True, prog_name="sharin")
        exc = result.exception
        if exc is not None and not isinstance(exc, SystemExit):
            assert result.exc_info is not None
            raise exc.with_traceback(result.exc_info[2])
        if code is not None:
            assert result.exit_code == code, (
                f"sharin {' '.join(argv)}: exit {result.exit_code}, expected {code}\n"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
            )
        return result


@pytest.fixture
def cli() -> Cli:
    return Cli()


class Processes:
    """Starts ``python -m sharin`` in subprocesses; kills whatever a test leaves running."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[str]] = []
        self.groups: set[int] = set()
        self.pids: set[int] = set()

    @staticmethod
    def argv(*args: object) -> list[str]:
        return [sys.executable, "-m", "sharin", *(str(a) for a in args)]

    def run(
        self, *args: object, code: int | None = 0, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if code is not None:
            assert proc.returncode == code, (
                f"sharin {' '.join(map(str, args))}: exit {proc.returncode}, expected {code}\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
            )
        return proc

    def start(self, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self.argv(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.popens.append(proc)
        return proc

    def track_group(self, pgid: int) -> None:
        """A task process group (tasks run in sessions of their own) to kill at teardown."""
        self.groups.add(pgid)

    def track_pid(self, pid: int) -> None:
        """A process that is not our child (a detached engine) to kill at teardown."""
        self.pids.add(pid)

    def cleanup(self) -> None:
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for proc in self.popens:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        for pgid in self.groups:
            kill_group(pgid)


@pytest.fixture
def procs() -> Iterator[Processes]:
    p = Processes()
    try:
        yield p
    finally:
        p.cleanup()
