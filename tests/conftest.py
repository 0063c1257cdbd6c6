"""Shared fixtures: an isolated environment, projects built through the API, and the CLI."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

import sharin
from sharin.interfaces import cli as cli_module

from .helpers import kill_group, pid_alive
from .services import available as services

# CI runs the property tests with examples derived from each test, the same every run, so that a
# submission's result does not depend on luck; elsewhere they explore new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked slurm, sge, pbs or sshd need that service (scripts/services/up.sh): without
    it they are skipped, or fail when SHARIN_REQUIRE_ALL is set (as scripts/test.sh does)."""
    for marker in services.MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        reason = services.missing(marker)
        if reason is None:
            continue
        if os.environ.get("SHARIN_REQUIRE_ALL"):
            pytest.fail(f"{marker} service absent and SHARIN_REQUIRE_ALL is set: {reason}")
        pytest.skip(reason)


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


PJM_BIN = Path(__file__).parent / "standins" / "pjm" / "bin"


class Pjm:
    """The PJM stand-in (``tests/standins/pjm``) on PATH, and a host ``fugaku`` that uses it.

    Every pjsub/pjstat/pjdel call is logged (one line: command and arguments) to ``calls``.
    """

    def __init__(self, home: Path, calls: Path, config_dir: Path) -> None:
        self.home = home
        self.calls = calls
        self.config_dir = config_dir

    def host(self, **entry: object) -> None:
        """(Re)write remotehost.json with the ``fugaku`` host, plus ``entry``'s fields."""
        data = {
            "name": "fugaku",
            "host": "localhost",
            "transport": "local",
            "jobScheduler": "Fugaku",
            "statusCheckInterval": 0.1,
            "numJob": 8,
            "useStepjob": True,
            "useBulkjob": True,
            "queue": "small,large",
        }
        data.update(entry)
        (self.config_dir / "remotehost.json").write_text(json.dumps([data]))

    def call_lines(self, command: str) -> list[list[str]]:
        """The argument lists of every call of ``command`` (pjsub, pjstat or pjdel) so far."""
        if not self.calls.exists():
            return []
        out = []
        for line in self.calls.read_text().splitlines():
            words = shlex.split(line)
            if words and words[0] == command:
                out.append(words[1:])
        return out

    def submit_then_crash(
        self, project: sharin.Project, c: sharin.Component, kind: str, **spec: Any
    ) -> int:
        """What an engine killed mid-submission leaves: the intent journaled (``queued``, no
        handle) and the job accepted by the scheduler. Returns the run's id."""
        import asyncio

        from sharin.engine import Journal, TaskSpec
        from sharin.executors import BatchExecutor, LocalTransport, load_schedulers
        from sharin.model import load_hosts

        journal = Journal(project.root / ".sharin" / "journal.sqlite")
        run = journal.new_run({})
        journal.set_task(run, c.rel, kind, "queued", attempt=1, started=True)
        journal.close()
        task = TaskSpec(
            key=c.rel,
            name=c.name,
            workdir=c.directory,
            script="run.sh",
            env=dict(os.environ, SHARIN_PROJECT_DIR=str(project.root)),
            log_dir=project.root / ".sharin" / "runs" / str(run),
            attempt=1,
            **spec,
        )
        ex = BatchExecutor(load_hosts()["fugaku"], load_schedulers()["Fugaku"], LocalTransport())
        asyncio.run(ex.submit(task))
        return run

    def command(self, *args: str) -> str:
        return subprocess.run(
            list(args), capture_output=True, text=True, check=False, timeout=30
        ).stdout

    def cleanup(self) -> None:
        out = self.command("pjstat", "-v", "--choose", "jid,st")
        ids = [line.split()[0] for line in out.splitlines()[1:] if line.split()]
        if ids:
            self.command("pjdel", *ids)


@pytest.fixture
def pjm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> Iterator[Pjm]:
    shims = tmp_path / "pjm-shims"
    shims.mkdir()
    calls = tmp_path / "pjm-calls.log"
    for name in ("pjsub", "pjstat", "pjdel"):
        shim = shims / name
        shim.write_text(
            "#!/bin/sh\n"
            f"line={name}\n"
            'for a in "$@"; do line="$line \'$a\'"; done\n'
            # one write per call: concurrent calls (a pjstat during a pjdel) do not interleave
            'printf "%s\\n" "$line" >> "$PJM_CALL_LOG"\n'
            f'exec "{PJM_BIN / name}" "$@"\n'
        )
        shim.chmod(0o755)
    # the stand-in's scripts start with `env python3`: this interpreter, not a slow shim
    python_dir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", f"{shims}:{python_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("PJM_STANDIN_HOME", str(tmp_path / "pjm-home"))
    monkeypatch.setenv("PJM_CALL_LOG", str(calls))
    p = Pjm(tmp_path / "pjm-home", calls, config_dir)
    p.host()
    try:
        yield p
    finally:
        p.cleanup()
