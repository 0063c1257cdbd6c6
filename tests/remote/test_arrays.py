"""Bulk jobs as job arrays and step jobs as chains of dependent jobs, against the real Slurm and
Grid Engine of ``scripts/services``: one ``sbatch --array`` / ``qsub -t`` per bulk job, one job
per step waiting for the step before it."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle

from ..conftest import Processes
from ..helpers import journal_tasks, lines, log_line, wait_for
from ..services.available import service_env


class Calls:
    """The scheduler's submit command on PATH through a shim that logs each call."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def of(self, command: str) -> list[list[str]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            words = shlex.split(line)
            if words and words[0] == command:
                out.append(words[1:])
        return out


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    env = service_env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "calls.log"
    for command in ("sbatch", "qsub"):
        real = subprocess.run(
            ["sh", "-c", f"command -v {command}"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if not real:
            continue
        shim = shims / command
        shim.write_text(
            "#!/bin/sh\n"
            f"line={command}\n"
            'for a in "$@"; do line="$line \'$a\'"; done\n'
            f'printf "%s\\n" "$line" >> {shlex.quote(str(log))}\n'
            f'exec {shlex.quote(real)} "$@"\n'
        )
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    yield Calls(log)


def host(config_dir: Path, scheduler: str) -> None:
    entry = {
        "name": "cluster",
        "host": "localhost",
        "transport": "local",
        "jobScheduler": scheduler,
        "statusCheckInterval": 0.5,
        "numJob": 8,
        "useStepjob": True,
        "useBulkjob": True,
    }
    (config_dir / "remotehost.json").write_text(json.dumps([entry]))


def bulk_task(p: Project, body: str, start: int, end: int) -> sharin.Component:
    c = sharin.add_component(
        p,
        "bulkjobTask",
        "bulk",
        script="run.sh",
        host="cluster",
        useJobScheduler=True,
        usePSSettingFile=False,
        startBulkNumber=start,
        endBulkNumber=end,
    )
    (c.directory / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    (c.directory / "run.sh").chmod(0o755)
    return c


def step_chain(p: Project, bodies: dict[str, str], **stepjob: object) -> None:
    sharin.add_component(p, "stepjob", "sj", host="cluster", **stepjob)
    names = list(bodies)
    for n in names:
        c = sharin.add_component(p, "stepjobTask", n, parent="sj", script="run.sh")
        (c.directory / "run.sh").write_text("#!/bin/sh\n" + bodies[n] + "\n")
        (c.directory / "run.sh").chmod(0o755)
    for a, b in zip(names, names[1:], strict=False):
        sharin.connect(p, f"sj/{a}", f"sj/{b}")


def job_ids(p: Project, keys: list[str]) -> list[str]:
    tasks = journal_tasks(p.root, 1)
    return [JobHandle.from_json(tasks[k].handle or "").native_id for k in keys]


def sacct_times(job: str) -> tuple[str, str]:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "Start,End", "-j", job],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    start, end = out[0].split("|")
    return start, end


# ------------------------------------------------------------------------------------ Slurm
@pytest.mark.slurm
@pytest.mark.slow
def test_a_bulk_job_of_100_sub_jobs_is_one_slurm_array(
    project: Project, config_dir: Path, calls: Calls
) -> None:
    host(config_dir, "SLURM")
    c = bulk_task(
        project,
        'echo "$PJM_BULKNUM $SLURM_ARRAY_TASK_ID" > "out.$PJM_BULKNUM.txt"\n'
        '[ "$PJM_BULKNUM" != 7 ] || exit 3',
        0,
        99,
    )

    result = sharin.run(project)

    assert result.state == "finished", result.failed  # one sub job failed; any success will do
    [submit] = calls.of("sbatch")  # ONE submission for the hundred
    assert "--array=0-99" in submit
    d = c.directory
    assert [(d / f"out.{n}.txt").read_text() for n in range(100)] == [
        f"{n} {n}\n" for n in range(100)
    ]
    status = (d / "subjob_status.wheel.txt").read_text().splitlines()
    assert status == [
        x
        for n in range(100)
        for x in (
            f"RT_{n}={3 if n == 7 else 0}",
            f"JOBSTATUS_{n}={'FAILED' if n == 7 else 'COMPLETED'}",
        )
    ]


@pytest.mark.slurm
@pytest.mark.slow
def test_a_killed_engine_reattaches_to_its_slurm_array(
    project: Project, config_dir: Path, calls: Calls, procs: Processes
) -> None:
    host(config_dir, "SLURM")
    c = bulk_task(project, 'echo "$PJM_BULKNUM" >> "$SHARIN_PROJECT_DIR/ran.log"; sleep 2', 0, 3)
    engine = procs.start("run", project.root)
    wait_for(lambda: len(lines(project.root / "ran.log")) >= 1, "a sub job to run", timeout=60)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()

    second = procs.run("run", project.root, timeout=120)

    assert "resumed run 1 finished" in second.stdout, second.stdout + second.stderr
    assert sorted(lines(project.root / "ran.log")) == ["0", "1", "2", "3"]
    assert len(calls.of("sbatch")) == 1  # re-attached, never submitted again
    status = (c.directory / "subjob_status.wheel.txt").read_text().splitlines()
    assert [x for x in status if x.startswith("RT_")] == [f"RT_{n}=0" for n in range(4)]


@pytest.mark.slurm
def test_a_step_job_is_a_chain_of_dependent_slurm_jobs(
    project: Project, config_dir: Path, calls: Calls
) -> None:
    host(config_dir, "SLURM")
    step_chain(project, {n: log_line(n) + "sleep 1" for n in ("s0", "s1", "s2")})

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert lines(project.root / "ran.log") == ["s0", "s1", "s2"]
    ids = job_ids(project, ["sj/s0", "sj/s1", "sj/s2"])
    submits = calls.of("sbatch")
    assert len(submits) == 3 and not any(a.startswith("--dependency") for a in submits[0])
    assert f"--dependency=afterany:{ids[0]}" in submits[1]
    assert f"--dependency=afterany:{ids[1]}" in submits[2]
    times = [sacct_times(j) for j in ids]
    for (_, end), (start, _) in zip(times, times[1:], strict=False):
        assert start >= end  # the next one starts only after the one before ended (ISO times)


@pytest.mark.slurm
def test_a_slurm_step_deleted_by_its_dependency_statement_counts_as_finished(
    project: Project, config_dir: Path, calls: Calls
) -> None:
    host(config_dir, "SLURM")
    step_chain(
        project,
        {"s0": log_line("s0") + "exit 1", "s1": log_line("s1"), "s2": log_line("s2")},
    )
    sharin.set_property(project, "sj/s0", "ignoreFailure", True)
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec!=0:all")

    result = sharin.run(project)

    assert lines(project.root / "ran.log") == ["s0"]  # s1 deleted, s2 with it (:all)
    tasks = journal_tasks(project.root, 1)
    assert tasks["sj/s0"].state == "failed"
    assert tasks["sj/s1"].state == "finished", tasks["sj/s1"].message
    assert "dependency statement deleted it" in (tasks["sj/s1"].message or "")
    assert tasks["sj/s2"].state == "finished", tasks["sj/s2"].message
    assert tasks["sj"].state == "finished"
    assert result.state == "failed"  # s0's failure, ignored, still shows
    ids = job_ids(project, ["sj/s0", "sj/s1"])
    s2 = calls.of("sbatch")[2]
    assert f"--dependency=afterok:{ids[0]},afterany:{ids[1]}" in s2


def test_a_statement_a_chain_cannot_keep_is_refused_naming_file_and_field(
    project: Project, config_dir: Path, calls: Calls
) -> None:
    host(config_dir, "SLURM")
    step_chain(project, {"s0": "true", "s1": "true", "s2": "true"})
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=pc==0")
    sharin.set_property(project, "sj/s2", "useDependency", True)
    sharin.set_property(project, "sj/s2", "dependencyForm", "sd=ec==0:one:0")  # translates

    [problem] = sharin.validate(project)

    assert (problem.file, problem.field) == ("sj/s1/cmp.wheel.json", "dependencyForm")
    assert problem.message.startswith("'sd=pc==0' cannot be kept on SLURM"), problem.message
    assert "sd=ec!=0" in problem.message
    with pytest.raises(sharin.ValidationError):
        sharin.run(project)
    assert calls.of("sbatch") == []  # nothing was submitted


# ------------------------------------------------------------------------------------ Grid Engine
@pytest.mark.sge
def test_a_bulk_job_is_one_grid_engine_array(
    project: Project, config_dir: Path, calls: Calls
) -> None:
    host(config_dir, "SGE")
    c = bulk_task(
        project,
        'echo "$PJM_BULKNUM $SGE_TASK_ID" > "out.$PJM_BULKNUM.txt"; exit "$PJM_BULKNUM"',
        0,
        3,
    )

    result = sharin.run(project)

    assert result.state == "finished", result.failed  # sub job 0 exited 0
    [submit] = calls.of("qsub")
    assert submit[submit.index("-t") + 1] == "1-4"  # Grid Engine's task ids start at 1
    d = c.directory
    assert [(d / f"out.{n}.txt").read_text() for n in range(4)] == [
        f"{n} {n + 1}\n" for n in range(4)
    ]
    assert (d / "subjob_status.wheel.txt").read_text().splitlines() == [
        x for n in range(4) for x in (f"RT_{n}={n}", f"JOBSTATUS_{n}=0")
    ]


@pytest.mark.sge
def test_a_step_job_is_a_chain_of_held_grid_engine_jobs(
    project: Project, config_dir: Path, calls: Calls
) -> None:
    host(config_dir, "SGE")
    step_chain(project, {n: log_line(n) + "sleep 1; exit 0" for n in ("s0", "s1", "s2")})

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert lines(project.root / "ran.log") == ["s0", "s1", "s2"]
    ids = job_ids(project, ["sj/s0", "sj/s1", "sj/s2"])
    submits = calls.of("qsub")
    assert "-hold_jid" not in submits[0]
    assert submits[1][submits[1].index("-hold_jid") + 1] == ids[0]
    assert submits[2][submits[2].index("-hold_jid") + 1] == ids[1]


def test_grid_engine_refuses_a_statement_it_cannot_keep(project: Project, config_dir: Path) -> None:
    host(config_dir, "SGE")
    step_chain(project, {"s0": "true", "s1": "true"})
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec!=0")

    [problem] = sharin.validate(project)

    assert (problem.file, problem.field) == ("sj/s1/cmp.wheel.json", "dependencyForm")
    assert problem.message.startswith("'sd=ec!=0' cannot be kept on SGE"), problem.message
    assert "whatever its exit code" in problem.message
