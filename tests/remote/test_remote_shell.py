"""Tasks on an SSH host without a job scheduler, against the real sshd of ``scripts/services``:
staged to the host's ``path``, started there detached from the SSH session, watched with one
command per poll for all of the host's tasks, outputs and logs brought back; stopped, re-attached
after the engine was killed, and finished through a dropped connection."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import sharin
from sharin.engine import JobHandle
from sharin.errors import TransportError
from sharin.executors import ExecutorRegistry, RemoteShellExecutor
from sharin.executors._ssh import POOL, SSHTransport
from sharin.executors._transport import CommandResult
from sharin.model import Project, load_hosts

from ..conftest import Processes
from ..helpers import journal_tasks
from .hostshell import own_dir, ssh, write_host

pytestmark = [pytest.mark.sshd]

T = TypeVar("T")


@pytest.fixture
def remote_path() -> Iterator[Path]:
    """A directory of this test's own on the host (the host shares this file system)."""
    with own_dir("rshell") as path:
        yield path


def _host(config_dir: Path, path: Path, **extra: object) -> None:
    write_host(config_dir, path=str(path), statusCheckInterval=0.5, **extra)


def _task(p: Project, name: str, script: str, *, outputs: tuple[str, ...] = ()) -> None:
    sharin.add_task(p, name, script, host="ci-ssh")
    if outputs:
        sharin.set_property(p.root, name, "outputFiles", [{"name": o, "dst": []} for o in outputs])


def _until(value: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = value()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _logs_with(root: Path, text: str) -> list[Path]:
    return [
        f for f in (root / ".sharin").rglob("*") if f.is_file() and text.encode() in f.read_bytes()
    ]


def _running_handle(p: Project, key: str) -> JobHandle | None:
    if not (p.root / ".sharin" / "journal.sqlite").exists():
        return None
    record = journal_tasks(p.root, 1).get(key)
    if record is None or record.state != "running" or record.handle is None:
        return None
    return JobHandle.from_json(record.handle)


def _alive_on_host(pid: str) -> bool:
    return ssh(f"ps -o pid= -p {pid}", check=False).returncode == 0


def test_outputs_logs_and_exit_codes_come_back_in_one_check_per_poll(
    project: Project, config_dir: Path, remote_path: Path
) -> None:
    _host(config_dir, remote_path)
    _task(
        project,
        "ok",
        'echo "$(hostname) $WHEEL_CURRENT_INDEX" > made.txt; echo ok-out; echo ok-err >&2; sleep 2',
        outputs=("made.txt",),
    )
    _task(project, "bad", "echo bad-out; sleep 2; exit 3")
    _task(project, "third", "sleep 2")
    assert sharin.validate(sharin.open_project(project.root)) == []
    registry = ExecutorRegistry(load_hosts())

    started = time.monotonic()

    async def go() -> sharin.RunResult:
        try:
            return await sharin.run_async(project.root, executors=registry)
        finally:
            await registry.close()  # a provider given to a run is its giver's to close

    result = asyncio.run(go())
    elapsed = time.monotonic() - started

    states = {t.key: t.state for t in sharin.status(project.root).tasks}
    assert states == {"ok": "finished", "bad": "failed", "third": "finished"}, result.failed
    assert any("exit code 3" in f for f in result.failed), result.failed
    made = (project.root / "ok" / "made.txt").read_text().split()
    assert made[0] == "sharin-remote"  # written on the host, not here
    assert _logs_with(project.root, "ok-out") and _logs_with(project.root, "ok-err")
    assert _logs_with(project.root, "bad-out")
    # the task ran in <path>/<run>/<component>, its record beside, never brought back
    [run_dir] = [d for d in remote_path.iterdir() if d.is_dir()]
    assert (run_dir / "ok" / "made.txt").is_file()
    assert not (project.root / "ok" / ".sharin-task").exists()
    [ex] = [e for e in registry._remote.values() if isinstance(e, RemoteShellExecutor)]
    # one watch command per interval for the three tasks together (one each would be 3x)
    assert 1 <= ex.queries <= elapsed / ex.interval + 2, (ex.queries, elapsed)


def test_starting_an_attempt_twice_runs_it_once(
    project: Project, config_dir: Path, remote_path: Path
) -> None:
    """A start cut off by a dropped connection, or made again by an engine that died while
    submitting, finds the attempt's record and starts nothing a second time."""
    _host(config_dir, remote_path)
    counter = remote_path / "count"
    _task(project, "once", f"echo ran >> {counter}; sleep 1")
    registry = ExecutorRegistry(load_hosts())
    ex = registry.executor_for("ci-ssh", False)
    assert isinstance(ex, RemoteShellExecutor)
    from sharin.engine import TaskSpec

    spec = TaskSpec(
        key="once",
        name="once",
        workdir=project.root / "once",
        script="run.sh",
        env={"WHEEL_X": "1"},
        log_dir=project.root / ".sharin" / "logs-test",
        host="ci-ssh",
        project_root=project.root,
        run_tag="t1",
    )

    async def go() -> tuple[str, str, str | None, int | None]:
        try:
            assert await ex.recover(spec) is None  # not started yet
            await ex.stage_in(spec)
            first = await ex.submit(spec)
            second = await ex.submit(spec)
            found = await ex.recover(spec)
            done = await ex.wait(first, spec)
            return first.native_id, second.native_id, found and found.native_id, done.returncode
        finally:
            await registry.close()

    first, second, found, rc = asyncio.run(go())
    assert first == second == found
    assert rc == 0
    assert counter.read_text() == "ran\n"


@pytest.mark.slow
def test_stop_kills_the_remote_process_group(
    project: Project, config_dir: Path, remote_path: Path, procs: Processes
) -> None:
    _host(config_dir, remote_path)
    _task(project, "long", "sleep 300 & echo $! > child.pid; wait")
    engine = procs.start("run", project.root)
    handle = _until(lambda: _running_handle(project, "long"), "the remote task to run")
    assert handle.executor == "remote"
    child = _until(lambda: next(remote_path.rglob("child.pid"), None), "the task's child to start")
    child_pid = _until(lambda: child.read_text().strip(), "the child pid")
    assert _alive_on_host(handle.native_id) and _alive_on_host(child_pid)
    jobs = procs.run("status", "--jobs", project.root)
    assert "long" in jobs.stdout and "running" in jobs.stdout, jobs.stdout

    procs.run("stop", project.root)
    engine.wait(timeout=60)

    assert not _alive_on_host(child_pid), "the task's child still runs on the host"
    assert not _alive_on_host(handle.native_id)
    assert {t.key: t.state for t in sharin.status(project.root).tasks} == {"long": "stopped"}


@pytest.mark.slow
def test_a_killed_engine_reattaches_and_the_script_runs_once(
    project: Project, config_dir: Path, remote_path: Path, procs: Processes
) -> None:
    _host(config_dir, remote_path)
    counter = remote_path / "count"
    _task(
        project, "t", f"echo ran >> {counter}; sleep 4; echo made > made.txt", outputs=("made.txt",)
    )
    engine = procs.start("run", project.root)
    handle = _until(lambda: _running_handle(project, "t"), "the remote task to run")
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    assert _alive_on_host(handle.native_id), "the task must outlive the engine"

    second = procs.run("run", project.root, timeout=120)

    assert "resumed run 1 finished" in second.stdout, second.stdout
    assert counter.read_text() == "ran\n"
    assert (project.root / "t" / "made.txt").read_text() == "made\n"
    tasks = journal_tasks(project.root, 1)
    assert (tasks["t"].state, tasks["t"].attempt) == ("finished", 1)


@pytest.mark.slow
def test_an_engine_killed_before_journaling_the_start_finds_the_task_again(
    project: Project,
    config_dir: Path,
    remote_path: Path,
    procs: Processes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host's record is written before the engine hears of the start: an engine that dies
    in between (the journal says the task was being submitted, no handle) leaves a task that
    the next run re-attaches to instead of starting again."""
    _host(config_dir, remote_path)
    counter = remote_path / "count"
    _task(
        project, "t", f"echo ran >> {counter}; sleep 2; echo made > made.txt", outputs=("made.txt",)
    )
    monkeypatch.setenv("SHARIN_TEST_KILL_AFTER_SPAWN", "t")
    engine = procs.start("run", project.root)
    assert engine.wait(timeout=60) == -signal.SIGKILL
    monkeypatch.delenv("SHARIN_TEST_KILL_AFTER_SPAWN")
    record = journal_tasks(project.root, 1)["t"]
    assert (record.state, record.handle) == ("queued", None)

    second = procs.run("run", project.root, timeout=120)

    assert "resumed run 1 finished" in second.stdout, second.stdout
    assert counter.read_text() == "ran\n"
    assert (project.root / "t" / "made.txt").read_text() == "made\n"
    tasks = journal_tasks(project.root, 1)
    assert (tasks["t"].state, tasks["t"].attempt) == ("finished", 1)


def test_num_job_limits_the_tasks_running_at_once_on_the_host(
    project: Project, config_dir: Path, remote_path: Path
) -> None:
    _host(config_dir, remote_path, numJob=1)
    spans = remote_path / "spans"
    for name in ("a", "b"):
        _task(project, name, f"echo start >> {spans}; sleep 1; echo end >> {spans}")

    result = sharin.run(project.root)

    assert result.ok, result.failed
    assert spans.read_text().split() == ["start", "end", "start", "end"]


@pytest.mark.slow
def test_a_dropped_connection_mid_task_does_not_stop_it(
    project: Project, config_dir: Path, remote_path: Path
) -> None:
    _host(config_dir, remote_path)
    counter = remote_path / "count"
    _task(
        project, "t", f"echo ran >> {counter}; sleep 4; echo made > made.txt", outputs=("made.txt",)
    )

    async def go() -> sharin.RunResult:
        run = asyncio.ensure_future(sharin.run_async(project.root))
        while not counter.exists():
            await asyncio.sleep(0.1)
        drop()  # while it starts, or just after
        while _running_handle(project, "t") is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        drop()  # while it is watched
        return await run

    def drop() -> None:
        dropped = 0
        loop = asyncio.get_running_loop()
        for link in list(POOL._links.values()):
            if link.conn is not None and link.loop is loop:  # not another test's loop's
                link.conn.abort()  # as a network failure would: no goodbye
                dropped += 1
        assert dropped == 1

    result = asyncio.run(go())

    assert result.ok, result.failed
    assert counter.read_text() == "ran\n"
    assert (project.root / "t" / "made.txt").read_text() == "made\n"


def test_a_command_cut_by_a_dropped_connection_is_a_transport_error(
    config_dir: Path, remote_path: Path
) -> None:
    """Not an exit code (-1) the command never gave: a repeatable command is run again, another
    is reported as the lost connection it was."""
    _host(config_dir, remote_path)
    [cfg] = load_hosts().values()
    transport = SSHTransport(cfg, retry_for=30)
    count = remote_path / "runs"

    async def cut_while(idempotent: bool) -> CommandResult | TransportError:
        running = asyncio.ensure_future(
            transport.run(f"echo x >> {count}; sleep 2; echo done", idempotent=idempotent)
        )
        while not count.exists():
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        for link in list(POOL._links.values()):
            if link.conn is not None and link.loop is loop:  # not another test's loop's
                link.conn.abort()  # mid-command
        try:
            return await running
        except TransportError as e:
            return e

    async def go() -> tuple[CommandResult | TransportError, CommandResult | TransportError]:
        try:
            first = await cut_while(False)
            count.unlink()
            second = await cut_while(True)
            return first, second
        finally:
            await POOL.close()

    cut, retried = asyncio.run(go())
    assert isinstance(cut, TransportError) and "connection" in str(cut), cut
    assert isinstance(retried, CommandResult) and retried.stdout == "done\n", retried
    assert count.read_text() == "x\nx\n"  # the repeatable one ran again
