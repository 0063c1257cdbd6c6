"""Batch jobs on this machine's own schedulers: a host entry with ``"transport": "local"`` and a
``jobScheduler`` submits through the real ``sbatch``/``squeue``/``sacct``/``scancel`` and Grid
Engine's ``qsub``/``qstat``/``qacct``/``qdel`` of ``scripts/services`` (no SSH, no stand-in).

Every job of these tests carries a name of its own (or is found by the id the journal holds), so
other users' jobs in the same queues never count."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle
from sharin.errors import ValidationError

from ..conftest import Cli, Pjm, Processes
from ..helpers import journal_tasks, wait_for
from ..services.available import service_env

SLURM = "here-slurm"
SGE = "here-sge"


@pytest.fixture(autouse=True)
def scheduler_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLURM_CONF, SGE_ROOT ...: what the schedulers' commands need (as env.sh sets them)."""
    for k, v in service_env().items():
        monkeypatch.setenv(k, v)


@pytest.fixture(autouse=True)
def no_jobs_left(project: Project) -> Iterator[None]:
    """Whatever a failed test left in a scheduler is deleted (found by the journal's ids)."""
    yield
    if not (project.root / ".sharin" / "journal.sqlite").exists():
        return
    for record in journal_tasks(project.root, 1).values():
        if record.handle:
            handle = JobHandle.from_json(record.handle)
            delete = {SLURM: "scancel", SGE: "qdel"}.get(handle.host)
            if delete is not None:
                _run(delete, handle.native_id)


def _hosts(config_dir: Path, **extra: dict[str, object]) -> None:
    """remotehost.json with this machine as a Slurm host and as a Grid Engine host."""
    entries = []
    for name, scheduler in ((SLURM, "SLURM"), (SGE, "SGE")):
        entry: dict[str, object] = {
            "name": name,
            "host": "localhost",
            "transport": "local",
            "jobScheduler": scheduler,
            "statusCheckInterval": 0.5,
            "numJob": 6,
        }
        entry.update(extra.get(name, {}))
        entries.append(entry)
    (config_dir / "remotehost.json").write_text(json.dumps(entries))


def _job(p: Project, name: str, body: str, host: str, **props: object) -> sharin.Component:
    c = sharin.add_task(p, name, body, host=host)
    sharin.set_property(p, name, "useJobScheduler", True)
    for k, v in props.items():
        sharin.set_property(p, name, k, v)
    return c


def _job_id(root: Path, run: int, key: str) -> str:
    record = journal_tasks(root, run)[key]
    assert record.handle, record
    return JobHandle.from_json(record.handle).native_id


def _run(*args: str, timeout: float = 30) -> str:
    return subprocess.run(
        list(args), capture_output=True, text=True, check=False, timeout=timeout
    ).stdout


def _sacct(job: str) -> tuple[str, str] | None:
    """The job's (state, exit code) in Slurm's accounting, once it has the job."""
    out = _run("sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", job)
    for line in out.splitlines():
        jobid, state, code = line.split("|")
        if jobid == job:
            return state.split()[0], code
    return None


def _log(root: Path, name: str, *, err: bool = False) -> str:
    return (root / ".sharin" / "runs" / "1" / f"{name}.{'err' if err else 'out'}").read_text()


# ------------------------------------------------------------------------------------ Slurm
@pytest.mark.slurm
def test_slurm_jobs_on_this_machine_exit_codes_outputs_and_logs(
    project: Project, config_dir: Path, cli: Cli
) -> None:
    _hosts(config_dir)
    _job(
        project,
        "ok",
        'echo "job $SLURM_JOB_ID in $PWD"; echo to-stderr >&2; echo made > made.txt',
        SLURM,
        outputFiles=[{"name": "made.txt", "dst": []}],
    )
    _job(project, "three", "echo failing; exit 3", SLURM)
    sharin.add_task(project, "use", "cat in.txt > used.txt")  # a local task after the job
    sharin.connect_files(project, "ok", "made.txt", "use", "in.txt")
    assert sharin.validate(sharin.open_project(project.root)) == []

    result = sharin.run(project.root, options=sharin.RunOptions(keep_going=True))

    assert result.state == "failed"
    tasks = journal_tasks(project.root, 1)
    assert (tasks["ok"].state, tasks["ok"].rc) == ("finished", 0)
    assert (tasks["three"].state, tasks["three"].rc) == ("failed", 3)
    assert "FAILED" in (tasks["three"].message or "")
    assert tasks["use"].state == "finished"
    root = project.root
    # no staging without a path: the job ran in the component's own directory
    job = _job_id(root, 1, "ok")
    assert _log(root, "ok").count(f"job {job} in {root / 'ok'}") == 1
    assert "to-stderr" in _log(root, "ok")  # Slurm writes both streams to slurm-<id>.out
    assert (root / "use" / "used.txt").read_text() == "made\n"
    assert "failing" in cli("log", root, "three").stdout
    assert _sacct(job) == ("COMPLETED", "0:0")
    assert _sacct(_job_id(root, 1, "three")) == ("FAILED", "3:0")
    for name in ("ok", "three"):
        assert JobHandle.from_json(tasks[name].handle or "").host == SLURM


@pytest.mark.slurm
@pytest.mark.slow
def test_a_slurm_job_is_queued_until_slurm_runs_it(
    project: Project, config_dir: Path, procs: Processes
) -> None:
    _hosts(config_dir)
    # held back for a few seconds by its begin time: PENDING (BeginTime) in squeue
    _job(project, "later", "sleep 1", SLURM, submitOption="--begin=now+4")
    engine = procs.start("run", project.root)

    def state() -> str:
        tasks = journal_tasks(project.root, 1) if (project.root / ".sharin").is_dir() else {}
        return tasks["later"].state if "later" in tasks else ""

    wait_for(lambda: state() == "queued" and _job_handle(project.root), "queued", timeout=30)
    job = _job_id(project.root, 1, "later")
    assert _run("squeue", "-h", "-j", job, "-o", "%T").strip() == "PENDING"
    shown = json.loads(procs.run("status", project.root, "--json").stdout)
    assert {t["key"]: t["state"] for t in shown["tasks"]}["later"] == "queued"
    # where WHEEL reads it: the state mirror writes it a moment after the journal
    cmp = project.root / "later" / "cmp.wheel.json"
    wait_for(lambda: json.loads(cmp.read_text())["state"] == "queued", "mirrored", timeout=5)
    # Slurm starts a job whose begin time passed on its next scheduling pass (up to a minute)
    wait_for(lambda: state() in ("running", "finished"), "running", timeout=120)
    engine.wait(timeout=120)
    assert engine.returncode == 0, engine.communicate()
    assert state() == "finished"


def _job_handle(root: Path) -> bool:
    record = journal_tasks(root, 1).get("later")
    return record is not None and bool(record.handle)


@pytest.mark.slurm
def test_a_slurm_job_staged_to_the_host_path_brings_its_outputs_back(
    project: Project, config_dir: Path, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    _hosts(config_dir, **{SLURM: {"path": str(jobs)}})
    (project.root / "data.txt").write_text("")  # not part of the task
    _job(
        project,
        "staged",
        'pwd > where.txt; echo "$(cat input.txt) back" > result.txt; echo not-wanted > junk.txt',
        SLURM,
        outputFiles=[{"name": "result.txt", "dst": []}],
        include=["where.txt"],
    )
    (project.root / "staged" / "input.txt").write_text("sent")

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    comp = project.root / "staged"
    where = Path((comp / "where.txt").read_text().strip())
    assert where.parent.parent == jobs and where.name == "staged", where
    assert (comp / "result.txt").read_text() == "sent back\n"
    assert not (comp / "junk.txt").exists()  # neither an output nor included
    assert (where / "junk.txt").is_file()
    job = _job_id(project.root, 1, "staged")
    assert f"slurm-{job}.out" in {p.name for p in where.iterdir()}


@pytest.mark.slurm
def test_no_more_than_num_job_slurm_jobs_at_once(project: Project, config_dir: Path) -> None:
    _hosts(config_dir, **{SLURM: {"numJob": 2, "statusCheckInterval": 0.3}})
    name = f"sharin-numjob-{uuid.uuid4().hex[:8]}"
    for i in range(6):
        _job(project, f"t{i}", "sleep 1", SLURM, submitOption=f"--job-name={name}")
    counts: list[int] = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            out = _run("squeue", "-h", "-n", name, "-o", "%i")  # pending, running, completing
            counts.append(len(out.split()))
            time.sleep(0.2)

    watcher = threading.Thread(target=count)
    watcher.start()
    try:
        result = sharin.run(project.root)
    finally:
        done.set()
        watcher.join()

    assert result.state == "finished", result.failed
    assert max(counts) == 2, counts  # never more than numJob, and numJob used
    ids = {_job_id(project.root, 1, f"t{i}") for i in range(6)}
    assert len(ids) == 6
    assert {_sacct(j) for j in ids} == {("COMPLETED", "0:0")}


@pytest.mark.slurm
def test_stop_cancels_the_submitted_slurm_jobs(
    project: Project, config_dir: Path, procs: Processes
) -> None:
    _hosts(config_dir)
    _job(project, "long1", "sleep 300", SLURM)
    _job(project, "long2", "sleep 300", SLURM, submitOption="--begin=now+600")  # stays PENDING
    engine = procs.start("run", project.root)

    def submitted() -> bool:
        if not (project.root / ".sharin" / "journal.sqlite").exists():
            return False
        tasks = journal_tasks(project.root, 1)
        return all(tasks.get(n) is not None and tasks[n].handle for n in ("long1", "long2"))

    wait_for(submitted, "both jobs to be submitted", timeout=30)
    ids = [_job_id(project.root, 1, n) for n in ("long1", "long2")]
    # long1 runs as soon as Slurm has a free core (other users' jobs may hold them)
    wait_for(lambda: journal_tasks(project.root, 1)["long1"].state == "running", "running", 120)

    assert sharin.stop(project.root) is True
    engine.wait(timeout=30)

    assert engine.returncode == 3
    for job in ids:
        wait_for(lambda job=job: (_sacct(job) or ("",))[0] == "CANCELLED", f"{job} CANCELLED")
    tasks = journal_tasks(project.root, 1)
    assert {tasks[n].state for n in ("long1", "long2")} == {"stopped"}


@pytest.mark.slurm
@pytest.mark.slow
def test_a_slurm_job_killed_by_its_time_limit_fails_with_slurms_reason(
    project: Project, config_dir: Path
) -> None:
    _hosts(config_dir)
    _job(project, "slow", "echo started; sleep 300", SLURM, elapsedTime="00:00:05")

    result = sharin.run(project.root)  # Slurm's limits are whole minutes: about a minute

    assert result.state == "failed"
    record = journal_tasks(project.root, 1)["slow"]
    assert record.state == "failed"
    assert "TIMEOUT" in (record.message or "") and "time limit" in (record.message or "")
    assert (_sacct(_job_id(project.root, 1, "slow")) or ("",))[0] == "TIMEOUT"
    assert "started" in _log(project.root, "slow")


# ------------------------------------------------------------------------------------ Grid Engine
def _qacct(job: str) -> dict[str, str] | None:
    proc = subprocess.run(
        ["qacct", "-j", job], capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        return None
    record = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        record[key] = value.strip()
    return record


def _qstat_ids() -> set[str]:
    out = _run("qstat", "-u", "*")
    return {line.split()[0] for line in out.splitlines()[2:] if line.split()}


def test_grid_engine_accounting_gives_its_own_reason_for_a_failed_job() -> None:
    from sharin.executors._schedulers import FAMILIES

    sep = "=" * 62
    text = (
        f"{sep}\njobnumber    24\n"
        "failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit\n"
        "exit_status  137                  (Killed)\n"
        f"{sep}\njobnumber    25\nfailed       0    \nexit_status  3\n"
    )

    table = FAMILIES["gridengine"].parse(text)

    killed, three = table["24"], table["25"]
    assert (killed.state, killed.returncode, killed.status) == ("done", 137, "37")
    assert killed.reason == "qmaster enforced h_rt, h_cpu, or h_vmem limit"
    assert (three.returncode, three.status, three.reason) == (3, "0", None)


@pytest.mark.sge
def test_grid_engine_jobs_on_this_machine_exit_codes_outputs_logs_and_time_limit(
    project: Project, config_dir: Path, cli: Cli
) -> None:
    _hosts(config_dir)
    _job(
        project,
        "ok",
        'echo "job $JOB_ID in $PWD"; echo to-stderr >&2; echo made > made.txt',
        SGE,
        outputFiles=[{"name": "made.txt", "dst": []}],
    )
    _job(project, "three", "echo failing; exit 3", SGE)
    _job(project, "slow", "echo started; sleep 300", SGE, elapsedTime="00:00:03")
    sharin.add_task(project, "use", "cat in.txt > used.txt")
    sharin.connect_files(project, "ok", "made.txt", "use", "in.txt")

    result = sharin.run(project.root, options=sharin.RunOptions(keep_going=True))

    assert result.state == "failed"
    root = project.root
    tasks = journal_tasks(root, 1)
    assert (tasks["ok"].state, tasks["ok"].rc) == ("finished", 0)
    assert (tasks["three"].state, tasks["three"].rc) == ("failed", 3)
    assert tasks["use"].state == "finished"
    assert (root / "use" / "used.txt").read_text() == "made\n"
    job = _job_id(root, 1, "ok")
    assert f"job {job} in {root / 'ok'}" in _log(root, "ok")
    assert "to-stderr" in _log(root, "ok", err=True)  # the job's .e file
    assert "failing" in cli("log", root, "three").stdout
    # the time limit (h_rt): failed, with Grid Engine's own words for why
    slow = tasks["slow"]
    assert slow.state == "failed"
    assert "h_rt" in (slow.message or ""), slow.message
    record = _qacct(_job_id(root, 1, "slow")) or {}
    assert record.get("failed", "").startswith("37"), record
    assert (_qacct(_job_id(root, 1, "three")) or {}).get("exit_status", "").startswith("3")


@pytest.mark.sge
@pytest.mark.slow
def test_a_grid_engine_job_is_queued_until_it_runs_and_stop_deletes_jobs(
    project: Project, config_dir: Path, procs: Processes
) -> None:
    _hosts(config_dir)
    begin = time.strftime("%m%d%H%M.%S", time.localtime(time.time() + 600))
    _job(project, "held", "sleep 300", SGE, submitOption=f"-a {begin}")  # waits 10 minutes
    _job(project, "long", "sleep 300", SGE)
    engine = procs.start("run", project.root)

    def states() -> dict[str, str]:
        if not (project.root / ".sharin" / "journal.sqlite").exists():
            return {}
        return {k: t.state for k, t in journal_tasks(project.root, 1).items() if t.handle}

    wait_for(lambda: states() == {"held": "queued", "long": "running"}, "queued/running", 60)
    ids = [_job_id(project.root, 1, n) for n in ("held", "long")]
    assert set(ids) <= _qstat_ids()
    shown = json.loads(procs.run("status", project.root, "--json").stdout)
    assert {t["key"]: t["state"] for t in shown["tasks"]} == {"held": "queued", "long": "running"}

    procs.run("stop", project.root)
    engine.wait(timeout=30)

    assert engine.returncode == 3
    wait_for(lambda: not set(ids) & _qstat_ids(), "the jobs to leave qstat", timeout=30)
    assert {t.state for t in journal_tasks(project.root, 1).values()} == {"stopped"}


# ------------------------------------------------------------------------------------ this machine
def test_a_batch_job_on_localhost_says_how_to_use_this_machines_scheduler(
    project: Project, config_dir: Path
) -> None:
    sharin.add_task(project, "t", "true")
    sharin.set_property(project, "t", "useJobScheduler", True)

    [problem] = sharin.validate(sharin.open_project(project.root))

    assert (problem.file, problem.field) == ("t/cmp.wheel.json", "useJobScheduler")
    assert '"transport": "local"' in problem.message
    with pytest.raises(ValidationError, match='"transport": "local"'):
        sharin.run(project.root)


def test_an_ssh_entry_for_localhost_without_path_mentions_the_local_transport(
    project: Project, config_dir: Path
) -> None:
    (config_dir / "remotehost.json").write_text(
        json.dumps([{"name": "me", "host": "localhost", "jobScheduler": "SLURM"}])
    )
    _job(project, "t", "true", "me")

    [problem] = sharin.validate(sharin.open_project(project.root))

    assert (problem.file, problem.field) == ("t/cmp.wheel.json", "host")
    assert "has no path" in problem.message and '"transport": "local"' in problem.message


# ------------------------------------------------------------------------------------ a full scheduler
def test_a_full_scheduler_takes_the_next_job_when_one_of_ours_ends(
    project: Project, pjm: Pjm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PJM stand-in accepts two jobs at a time (PJM 0072 for a third, as the real PJM
    refuses one over its accept limit): the other submissions wait for one of the host's jobs
    to end, then one of them goes per freed place, instead of each asking on a timer."""
    monkeypatch.setenv("PJM_STANDIN_ACCEPT_LIMIT", "2")
    monkeypatch.setenv("PJM_STANDIN_START_DELAY", "0.2")
    pjm.host(numJob=6, statusCheckInterval=0.2)
    for i in range(6):
        _job(project, f"t{i}", "sleep 1", "fugaku")

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    logs = [_log(project.root, f"t{i}") for i in range(6)]
    assert sum("submitting again when" in x for x in logs) >= 3, logs
    assert not any("retrying in" in x for x in logs), logs  # no timed back-off was needed
    calls = pjm.call_lines("pjsub")
    refused = len(calls) - 6
    # at most the first wave of refusals and one more per freed place (four waited)
    assert 4 <= refused <= 8, refused


def test_stop_ends_a_submission_waiting_for_a_full_scheduler_at_once(
    project: Project, pjm: Pjm, procs: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PJM_STANDIN_ACCEPT_LIMIT", "1")
    pjm.host(numJob=2, statusCheckInterval=0.2)
    _job(project, "first", "sleep 120", "fugaku")
    _job(project, "second", "sleep 120", "fugaku")
    engine = procs.start("run", project.root)
    out = project.root / ".sharin" / "runs" / "1"

    def waiting() -> bool:
        return any(
            "submitting again when" in f.read_text() for f in out.glob("*.out") if f.is_file()
        )

    wait_for(waiting, "a submission to wait for the full scheduler", timeout=30)
    started = time.monotonic()
    procs.run("stop", project.root)
    engine.wait(timeout=30)

    assert engine.returncode == 3
    assert time.monotonic() - started < 10  # not the minute a waiting submission may wait
    tasks = journal_tasks(project.root, 1)
    assert {t.state for t in tasks.values()} == {"stopped"}
    assert len([t for t in tasks.values() if t.handle]) == 1  # the one job, deleted
    assert len(pjm.call_lines("pjdel")) >= 1
