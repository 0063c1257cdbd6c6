"""What a command or a submission whose connection went away while it ran comes to: never an
exit status made up for it, never a second submission of a job that may have got in."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from sharin.engine import TaskSpec
from sharin.errors import TransportError
from sharin.executors import BatchExecutor, LocalTransport, load_schedulers
from sharin.executors._ssh import SSHPool, SSHTransport
from sharin.model import HostConfig, load_hosts

from .watched import watched_host


@pytest.mark.sshd
def test_a_command_whose_connection_is_cut_is_a_lost_connection_not_an_exit_status(
    tmp_path: Path, config_dir: Path
) -> None:
    with watched_host(tmp_path, config_dir) as host:
        cfg = load_hosts()["ci-ssh"]
        pool = SSHPool()
        t = SSHTransport(cfg, pool=pool, retry_for=10)
        cutter = threading.Timer(1.0, host.cut_connections)

        async def go() -> tuple[str, str]:
            await t.run("true")
            cutter.start()
            try:
                got = await t.run("sleep 5; echo done")
                said = f"exit {got.returncode}"
            except TransportError as e:
                assert e.transient, e
                said = str(e)
            # a command that may be repeated is: it runs again over a new connection
            again = await t.run("echo again", idempotent=True)
            await pool.close()
            return said, again.stdout

        said, again = asyncio.run(go())
        cutter.join()
        assert "connection" in said and "lost" in said, said
        assert again == "again\n"
        assert host.logins() == 2


def _spec(tmp_path: Path) -> TaskSpec:
    work = tmp_path / "t"
    work.mkdir(exist_ok=True)
    return TaskSpec(
        key="t", name="t", workdir=work, script="run.sh", env={}, log_dir=tmp_path, attempt=1
    )


def _executor() -> BatchExecutor:
    # a host sharin runs on (its login node): the job's directory is the task's own
    cfg = HostConfig(
        name="cluster", host="localhost", job_scheduler="SLURM", raw={"transport": "local"}
    )
    return BatchExecutor(cfg, load_schedulers()["SLURM"], LocalTransport())


def test_a_submission_still_running_on_the_host_is_waited_for_not_repeated(
    tmp_path: Path,
) -> None:
    """The engine died while ``sbatch`` ran: its record has the first line only. The engine
    started again waits until the command has said what it did, and takes its job."""
    ex, spec = _executor(), _spec(tmp_path)
    record = spec.workdir / ex._record_name(spec)
    record.write_text("sharin-submit bulk=0\n")

    def finish() -> None:
        with open(record, "a") as f:
            f.write("Submitted batch job 4242\nsharin-submit-end 0\n")

    later = threading.Timer(1.0, finish)
    later.start()
    started = time.monotonic()
    handle = asyncio.run(ex.recover(spec))
    later.join()
    assert handle is not None and handle.native_id == "4242"
    assert time.monotonic() - started >= 0.9


def test_a_submission_that_ended_without_a_job_or_never_ran_is_not_found(tmp_path: Path) -> None:
    ex, spec = _executor(), _spec(tmp_path)
    assert asyncio.run(ex.recover(spec)) is None  # no record: the command never ran
    record = spec.workdir / ex._record_name(spec)
    record.write_text(
        "sharin-submit bulk=0\nsbatch: error: invalid partition\nsharin-submit-end 1\n"
    )
    started = time.monotonic()
    assert asyncio.run(ex.recover(spec)) is None
    assert time.monotonic() - started < 0.5  # it ended: nothing to wait for


def test_the_submit_command_records_its_end(tmp_path: Path) -> None:
    ex, spec = _executor(), _spec(tmp_path)
    command = ex.submit_command(spec).replace("sbatch", "echo Submitted batch job 77; :")
    res = asyncio.run(LocalTransport().run(command))
    assert res.returncode == 0
    text = (spec.workdir / ex._record_name(spec)).read_text()
    assert text.splitlines() == [
        "sharin-submit bulk=0",
        "Submitted batch job 77",
        "sharin-submit-end 0",
    ]


def test_a_host_never_reached_is_given_up_on_soon_and_then_at_once() -> None:
    """Nothing listens there: the first call tries for a few seconds, not a minute, and the
    calls after it fail at once (a wrong entry must not hold a run for minutes per task)."""
    cfg = HostConfig(name="nowhere", host="127.0.0.1", port=1, ready_timeout=2.0)
    pool = SSHPool()
    t = SSHTransport(cfg, pool=pool)  # the run's transport: a minute for an outage

    async def go() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        took = []
        for _ in range(2):
            started = loop.time()
            with pytest.raises(TransportError, match="cannot connect"):
                await t.run("true", idempotent=True)
            took.append(loop.time() - started)
        await pool.close()
        return took[0], took[1]

    first, second = asyncio.run(go())
    assert first < 15
    assert second < 1


def test_a_submit_command_whose_directory_is_missing_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex, spec = _executor(), _spec(tmp_path)
    spec.workdir.rmdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = asyncio.run(LocalTransport().run(ex.submit_command(spec)))
    assert res.returncode != 0 and "t" in res.stderr
    assert list(elsewhere.iterdir()) == []  # no record left where the shell happened to be
