"""Fixtures for the real schedulers and the SSH host that ``scripts/services/up.sh`` starts."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from .available import SCRIPTS, service_env

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    """Call ``probe`` until it returns something other than None (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


class Services:
    """Runs commands in the services' environment (env.sh) and calls their helper scripts."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self,
        args: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        code: int | None = 0,
        timeout: float = 60,
        path: str | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if path is not None:
            env["PATH"] = f"{path}:{env['PATH']}"
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if code is not None:
            assert proc.returncode == code, (
                f"{shlex.join(str(a) for a in args)}: exit {proc.returncode}, expected {code}\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
            )
        return proc

    def helper(self, script: str, *args: str) -> None:
        """``scripts/services/<script> args`` (netns-link.sh down, sshd.sh restart, ...)."""
        self.run(["bash", SCRIPTS / script, *args], timeout=120)


@pytest.fixture(scope="session")
def services() -> Services:
    return Services({**os.environ, **service_env()})


class Slurm:
    """sbatch and friends; jobs submitted here are cancelled at teardown."""

    def __init__(self, services: Services, workdir: Path) -> None:
        self.services = services
        self.workdir = workdir
        self.jobs: list[str] = []

    def sbatch(self, *args: str) -> str:
        out = self.services.run(["sbatch", "--parsable", *args], cwd=self.workdir).stdout
        job = out.strip().split(";")[0]
        assert job.isdigit(), out
        self.jobs.append(job)
        return job

    def squeue_state(self, job: str) -> str:
        """The job's state in squeue (finished jobs stay MinJobAge seconds), or ``""``."""
        out = self.services.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"], code=None)
        return out.stdout.strip()

    def sacct(self, job: str) -> dict[str, tuple[str, str]]:
        """``{job id: (state, exit code)}`` of the job's allocations (no steps); empty until
        the accounting has it (about a second after submission)."""
        out = self.services.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", job], code=None
        ).stdout
        rows = {}
        for line in out.splitlines():
            jobid, state, exit_code = line.split("|")
            rows[jobid] = (state.split()[0], exit_code)
        return rows

    def finished(
        self, job: str, ids: set[str] | None = None, timeout: float = 60
    ) -> dict[str, tuple[str, str]]:
        """Wait until sacct shows every allocation of ``job`` in a final state (and, if given,
        exactly the allocations ``ids``: an array job shows as one row ``ID`` for a moment
        before its tasks ``ID_1``... appear)."""
        final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}

        def probe() -> dict[str, tuple[str, str]] | None:
            rows = self.sacct(job)
            if ids is not None and set(rows) != ids:
                return None
            if rows and all(state in final for state, _ in rows.values()):
                return rows
            return None

        return wait_for(f"job {job} to finish in sacct", probe, timeout)

    def cleanup(self) -> None:
        if self.jobs:
            self.services.run(["scancel", *self.jobs], code=None)


@pytest.fixture
def slurm(services: Services, tmp_path: Path) -> Iterator[Slurm]:
    s = Slurm(services, tmp_path)
    try:
        yield s
    finally:
        s.cleanup()


class Ssh:
    """``ssh`` to the test user on the network namespace's host, strict host key checking."""

    def __init__(self, services: Services) -> None:
        self.services = services
        env = services.env
        self.user = env["TEST_SSH_USER"]
        self.host = env["TEST_SSH_HOST"]
        self.port = env["TEST_SSH_PORT"]
        self.key = env["TEST_SSH_KEY"]
        self.known_hosts = env["TEST_SSH_KNOWN_HOSTS"]

    def argv(
        self,
        command: str,
        *options: str,
        key: str | Path | None = None,
        known_hosts: str | Path | None = None,
    ) -> list[str]:
        # ssh keeps the first value of an option: the caller's come first
        return [
            "ssh",
            *options,
            "-i",
            str(key or self.key),
            "-p",
            self.port,
            "-o",
            f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=3",
            f"{self.user}@{self.host}",
            command,
        ]

    def run(
        self,
        command: str,
        *options: str,
        key: str | Path | None = None,
        known_hosts: str | Path | None = None,
        code: int | None = 0,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(command, *options, key=key, known_hosts=known_hosts)
        return self.services.run(argv, code=code, timeout=timeout)


@pytest.fixture
def ssh(services: Services) -> Ssh:
    return Ssh(services)


class Sge:
    """Grid Engine's qsub/qacct; jobs submitted here are deleted at teardown."""

    def __init__(self, services: Services, workdir: Path) -> None:
        self.services = services
        self.workdir = workdir
        self.jobs: list[str] = []

    def qsub(self, script: str, *args: str) -> str:
        out = self.services.run(
            ["qsub", "-terse", "-cwd", "-j", "y", *args], cwd=self.workdir, stdin=script
        ).stdout
        job = out.strip()
        assert job.isdigit(), out
        self.jobs.append(job)
        return job

    def live(self) -> set[str]:
        """The ids of the jobs qstat lists (pending or running)."""
        out = self.services.run(["qstat", "-u", "*"]).stdout
        return {line.split()[0] for line in out.splitlines()[2:] if line.split()}

    def qacct(self, job: str, timeout: float = 60) -> dict[str, str]:
        """The job's accounting record, once it has one (a few seconds after it ends)."""

        def probe() -> dict[str, str] | None:
            proc = self.services.run(["qacct", "-j", job], code=None)
            if proc.returncode != 0:
                return None
            record = {}
            for line in proc.stdout.splitlines():
                key, _, value = line.partition(" ")
                record[key] = value.strip()
            return record

        return wait_for(f"Grid Engine job {job} in qacct", probe, timeout)

    def cleanup(self) -> None:
        if self.jobs:
            self.services.run(["qdel", *self.jobs], code=None)


@pytest.fixture
def sge(services: Services, tmp_path: Path) -> Iterator[Sge]:
    s = Sge(services, tmp_path)
    try:
        yield s
    finally:
        s.cleanup()


class Pbs:
    """The PBS/Torque wrappers (qsub, qstat, qdel) on Slurm."""

    def __init__(self, services: Services, workdir: Path) -> None:
        self.services = services
        self.workdir = workdir
        self.bin = services.env["TEST_TORQUE_BIN"]
        self.jobs: list[str] = []

    def run(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return self.services.run(list(args), cwd=self.workdir, path=self.bin, code=code)

    def qsub(self, name: str, script: str, *args: str) -> str:
        path = self.workdir / name
        path.write_text(script)
        job = self.run("qsub", *args, name).stdout.strip()
        assert job.isdigit(), job
        self.jobs.append(job)
        return job

    def state(self, job: str) -> str:
        """qstat's S column (Q, R, C) of ``job``."""
        out = self.run("qstat", job).stdout
        rows = [line.split() for line in out.splitlines()[2:]]
        assert len(rows) == 1 and rows[0][0] == job, out
        return rows[0][4]

    def cleanup(self) -> None:
        if self.jobs:
            self.run("qdel", *self.jobs, code=None)


@pytest.fixture
def pbs(services: Services, tmp_path: Path) -> Iterator[Pbs]:
    p = Pbs(services, tmp_path)
    try:
        yield p
    finally:
        p.cleanup()
