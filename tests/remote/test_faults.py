"""Slurm jobs submitted over SSH to the test host, counted and disrupted from outside sharin.

Each test is a real run: tasks on the host ``ci-ssh`` (sshd in a network namespace, the same
Slurm) whose logins run with logging wrappers of ``sbatch``/``squeue``/``sacct`` first on the
``PATH`` (:mod:`tests.remote.watched`). Every job is named ``<test prefix>-<task>`` so that
``sacct`` by name shows whether anything was submitted twice. The disruptions (sshd restarted,
the host's link down, slurmctld restarted) are each logged in the disruptions log first and kept
as short as the test allows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sharin
from sharin import model
from sharin.executors import BatchExecutor, ExecutorRegistry, load_schedulers
from sharin.model import Project

from ..helpers import kill_group
from .watched import WatchedHost, disrupt, helper, watched_host

pytestmark = [pytest.mark.sshd, pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture
def host(tmp_path: Path, config_dir: Path) -> Iterator[WatchedHost]:
    with watched_host(tmp_path, config_dir) as h:
        yield h


def _tasks(project: Project, host: WatchedHost, n: int, body: str) -> list[str]:
    """``n`` tasks on the host, each a Slurm job named ``<prefix>-tNNN`` writing ``out.txt``."""
    names = [f"t{i:03d}" for i in range(n)]
    for name in names:
        sharin.add_task(
            project,
            name,
            f'{body}\necho "$SLURM_JOB_ID" > out.txt\n',
            host=host.name,
            useJobScheduler=True,
            submitOption=f"-J {host.prefix}-{name} -o /dev/null",
            outputFiles=[{"name": "out.txt", "dst": []}],
        )
    return names


def _run(project: Project) -> tuple[sharin.RunResult, BatchExecutor]:
    registry = ExecutorRegistry(model.load_hosts(), schedulers=load_schedulers())

    async def go() -> sharin.RunResult:
        try:
            return await sharin.run_async(project.root, executors=registry)
        finally:
            await registry.close()  # a provider given to a run is its giver's to close

    result = asyncio.run(go())
    ex = registry.executor_for("ci-ssh", True)
    assert isinstance(ex, BatchExecutor)
    return result, ex


def _outputs(project: Project, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        f = project.root / name / "out.txt"
        out[name] = f.read_text().strip() if f.is_file() else ""
    return out


def _no_job_twice(host: WatchedHost, names: list[str]) -> None:
    wanted = {f"{host.prefix}-{n}" for n in names}
    counts = host.wait_for_accounting(wanted)
    assert set(counts) == wanted, sorted(wanted - set(counts))
    twice = {n: c for n, c in counts.items() if c != 1}
    assert not twice, f"submitted more than once: {twice}"
    assert len(host.calls("sbatch")) == len(names)


class _When(threading.Thread):
    """In a thread: wait until ``probe()`` holds, then call ``then`` (the disruption)."""

    def __init__(self, probe: Callable[[], bool], then: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.probe, self.then = probe, then
        self.failed: BaseException | None = None
        self.ended = 0.0  #: when the disruption was over
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        try:
            while not self.probe():
                if time.monotonic() > deadline:
                    raise AssertionError("the run never reached the point of disruption")
                time.sleep(0.1)
            self.then()
            self.ended = time.time()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.failed = e

    def joined(self) -> None:
        self.join(timeout=180)
        assert not self.is_alive()
        if self.failed is not None:
            raise self.failed


# ------------------------------------------------------------------ counted
def test_200_jobs_are_watched_with_one_status_query_per_interval_over_one_connection(
    project: Project, host: WatchedHost
) -> None:
    interval = 2.0
    host.write_config(statusCheckInterval=interval, numJob=200)
    names = _tasks(project, host, 200, "true")

    started = time.time()
    result, ex = _run(project)
    took = time.time() - started

    assert result.state == "finished", result.failed
    outs = _outputs(project, names)
    assert all(v.isdigit() for v in outs.values()), {k: v for k, v in outs.items() if not v}
    assert len(set(outs.values())) == len(names)  # 200 jobs, each its own
    squeue = host.calls("squeue")
    sacct = host.calls("sacct")
    # counted from outside: the status queries are at least an interval apart, each for all
    # the jobs watched then, and at most one history query follows each
    assert squeue, "no status query reached the host"
    gaps = [b - a for a, b in zip(squeue, squeue[1:], strict=False)]
    assert min(gaps, default=interval) >= interval * 0.9, gaps
    assert len(squeue) <= took / interval + 1
    assert len(sacct) <= len(squeue)
    assert (
        max(len(x.split(",")) for x in host.call_lines("squeue")) > len(names) // 4
    )  # one query, many jobs
    # and by the executor's own counter
    assert ex.queries == len(squeue) + len(sacct)
    # one connection for the whole run
    assert host.logins() == 1
    _no_job_twice(host, names)


# ------------------------------------------------------------------ disrupted
def _disrupted_run(
    project: Project, host: WatchedHost, disruption: Callable[[], None], *, n: int = 6
) -> None:
    """``n`` jobs of a few seconds, two at a time, so that jobs are submitted, watched and
    collected while ``disruption`` (once the first two were submitted) lasts. The run
    completes, no task failed, every output came back and no job was submitted twice."""
    host.write_config(statusCheckInterval=1, numJob=2)
    names = _tasks(project, host, n, "sleep 2")
    t = _When(lambda: len(host.calls("sbatch")) >= 2, disruption)
    result, _ = _run(project)
    ended = time.time()
    t.joined()
    assert t.ended < ended  # the run outlasted the disruption
    assert result.state == "finished", result.failed
    assert not result.failed
    outs = _outputs(project, names)
    assert all(v.isdigit() for v in outs.values()), outs
    _no_job_twice(host, names)


def test_sshd_restarted_mid_run(project: Project, host: WatchedHost) -> None:
    """OpenSSH keeps the sessions of a restarted server; the run's connection is then cut too,
    as a reboot would, so that the run logs in again to the new server."""

    def restart() -> None:
        disrupt("sshd restarted (scripts/services/sshd.sh restart)", 2)
        helper("sshd.sh", "restart")
        assert host.cut_connections() > 0

    _disrupted_run(project, host, restart)
    assert host.logins() == 2


def test_the_hosts_link_down_for_20_s_mid_run(project: Project, host: WatchedHost) -> None:
    def link_down() -> None:
        disrupt("the SSH host's link down (scripts/services/netns-link.sh down)", 20)
        helper("netns-link.sh", "down")
        try:
            time.sleep(20)
        finally:
            helper("netns-link.sh", "up")

    _disrupted_run(project, host, link_down)


def test_slurmctld_restarted_mid_run(project: Project, host: WatchedHost) -> None:
    def restart() -> None:
        disrupt("slurmctld restarted (scripts/services/slurm.sh restart slurmctld)", 5)
        helper("slurm.sh", "restart", "slurmctld")

    _disrupted_run(project, host, restart)


def test_the_connection_cut_while_jobs_are_being_submitted(
    project: Project, host: WatchedHost
) -> None:
    """The host's end of the connection dies while ``sbatch`` runs there (made slow): the
    submissions under way still get their jobs (nothing is submitted again, no task fails)."""
    n = 4
    host.write_config(statusCheckInterval=1, numJob=n)
    host.slow("sbatch", 1.5)
    names = _tasks(project, host, n, "sleep 1")

    def cut() -> None:
        disrupt("one SSH connection of the test's own cut (its sshd session killed)", 0)
        assert host.cut_connections() > 0

    t = _When(lambda: len(host.calls("sbatch")) >= n, cut)
    result, _ = _run(project)
    t.joined()
    assert result.state == "finished", result.failed
    outs = _outputs(project, names)
    assert all(v.isdigit() for v in outs.values()), outs
    _no_job_twice(host, names)
    assert host.logins() == 2  # the first connection, and the one opened again


# ------------------------------------------------------------------ killed
@pytest.mark.parametrize("slow_sbatch", [0, 2], ids=["submitted", "mid-submission"])
def test_engine_killed_while_jobs_are_queued_reattaches_without_submitting_twice(
    project: Project, host: WatchedHost, tmp_path: Path, slow_sbatch: float
) -> None:
    """SIGKILL while the jobs wait in the queue (``--begin``), and (``mid-submission``) while
    each ``sbatch`` is still running on the host: the engine started again at once re-attaches
    to every job and submits none of them again."""
    n = 6
    host.write_config(statusCheckInterval=1, numJob=n)
    host.slow("sbatch", slow_sbatch)
    names = _tasks(project, host, n, "true")
    for name in names:  # held in the queue for a while: Slurm starts none before then
        sharin.set_property(
            project.root,
            name,
            "submitOption",
            f"-J {host.prefix}-{name} -o /dev/null --begin=now+12",
        )
    log = open(tmp_path / "engine.log", "wb")  # noqa: SIM115 - closed below
    engine = subprocess.Popen(
        [sys.executable, "-m", "sharin", "run", str(project.root)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 120
        while len(host.calls("sbatch")) < n // 2:
            assert engine.poll() is None, (tmp_path / "engine.log").read_text()
            assert time.monotonic() < deadline, "the engine submitted nothing"
            time.sleep(0.05)
        os.killpg(engine.pid, signal.SIGKILL)
        engine.wait(timeout=30)
    finally:
        kill_group(engine.pid)
        log.close()
    submitted_before = len(host.calls("sbatch"))
    assert 0 < submitted_before
    host.slow("sbatch", 0)

    result, _ = _run(project)

    assert result.state == "finished", result.failed
    outs = _outputs(project, names)
    assert all(v.isdigit() for v in outs.values()), outs
    wanted = {f"{host.prefix}-{x}" for x in names}
    counts = host.wait_for_accounting(wanted)
    assert set(counts) == wanted
    assert {k: v for k, v in counts.items() if v != 1} == {}, "submitted twice"
    assert len(host.calls("sbatch")) == n  # the engine started again submitted only the rest
    assert len(set(outs.values())) == n
