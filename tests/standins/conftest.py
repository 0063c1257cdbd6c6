"""The LSF and PBS Pro stand-ins on ``PATH`` for a test, each with a host entry that uses it
(the PJM stand-in's fixture is the suite's own: ``tests/conftest.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PBS_SERVER = "pbs-standin"


class StandIn:
    """A stand-in's state directory and a working directory for its commands, and a host
    ``name`` in the test's ``remotehost.json`` that submits to it."""

    name = ""
    scheduler = ""
    #: what a job script starts with to work in the directory it was submitted from
    prologue = ""

    def __init__(self, tmp_path: Path, config_dir: Path) -> None:
        self.home = tmp_path / f"{self.name}-home"
        self.workdir = tmp_path / f"{self.name}-work"
        self.workdir.mkdir()
        self.config_dir = config_dir

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def host(self, scheduler: str | None = None) -> None:
        entry = {
            "name": self.name,
            "host": "localhost",
            "transport": "local",
            "jobScheduler": scheduler or self.scheduler,
            "statusCheckInterval": 0.2,
            "numJob": 8,
            "useStepjob": True,
            "useBulkjob": True,
        }
        (self.config_dir / "remotehost.json").write_text(json.dumps([entry]))

    def jobs(self) -> list[dict[str, object]]:
        return [json.loads(p.read_text()) for p in sorted((self.home / "jobs").glob("*.json"))]

    def put_on_path(self, monkeypatch: pytest.MonkeyPatch, bin_dir: Path, env: str) -> None:
        path = [str(bin_dir), os.path.dirname(sys.executable), os.environ["PATH"]]
        monkeypatch.setenv("PATH", os.pathsep.join(path))
        monkeypatch.setenv(f"{env}_HOME", str(self.home))
        monkeypatch.setenv(f"{env}_START_DELAY", "0.2")
        monkeypatch.setenv(f"{env}_KILL_GRACE", "0.5")


class Lsf(StandIn):
    name = "lsf"
    scheduler = "LSF"

    def wait_ended(self, *ids: str) -> str:
        deadline = time.monotonic() + 60  # a loaded machine runs them late
        while True:
            out = self.run("bjobs", "-a", "-noheader", "-o", "jobid jobindex stat exit_code", *ids)
            if not any(w in out.stdout for w in ("PEND", "RUN")) or time.monotonic() > deadline:
                return out.stdout
            time.sleep(0.2)


class Pbs(StandIn):
    name = "pbs"
    scheduler = "PBSPro"
    prologue = 'cd "$PBS_O_WORKDIR"\n'

    def script(self, name: str, body: str) -> str:
        (self.workdir / name).write_text("#!/bin/sh\n" + self.prologue + body + "\n")
        return name

    def full(self, *ids: str) -> str:
        deadline = time.monotonic() + 60  # a loaded machine runs them late
        while True:
            out = self.run("qstat", "-x", "-f", "-t", *ids).stdout
            states = [ln.split()[-1] for ln in out.splitlines() if "job_state =" in ln]
            if all(s in "FX" for s in states) or time.monotonic() > deadline:
                return out
            time.sleep(0.2)


@pytest.fixture
def lsf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> Iterator[Lsf]:
    x = Lsf(tmp_path, config_dir)
    x.put_on_path(monkeypatch, HERE / "lsf" / "bin", "LSF_STANDIN")
    yield x
    x.run("bkill", "0")


@pytest.fixture
def pbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> Iterator[Pbs]:
    x = Pbs(tmp_path, config_dir)
    x.put_on_path(monkeypatch, HERE / "pbspro" / "bin", "PBS_STANDIN")
    monkeypatch.setenv("PBS_STANDIN_SERVER", PBS_SERVER)
    yield x
    for job in x.jobs():
        ident = f"{job['id']}[]" if job["array"] else str(job["id"])
        x.run("qdel", ident)


@pytest.fixture(params=["lsf", "pbs"])
def standin(request: pytest.FixtureRequest) -> StandIn:
    """Each of the LSF and PBS Pro stand-ins in turn."""
    x = request.getfixturevalue(request.param)
    assert isinstance(x, StandIn)
    return x
