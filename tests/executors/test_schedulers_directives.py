"""A task's resource properties written as each scheduler's directives; the script's own win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.errors import ExecutorError, ProjectError
from sharin.executors import load_schedulers
from sharin.executors._scheduler import Directives, directives_from

from ..conftest import Pjm
from ..helpers import journal_tasks

ALL = Directives(nodes=2, cores=4, elapsed=5400, memory=4096, extra=("--exclusive",))
SCRIPT = "#!/bin/bash\necho hello\n"


def added(scheduler: str, d: Directives, script: str = SCRIPT) -> list[str]:
    text = load_schedulers()[scheduler].with_directives(script, d)
    if text is None:
        return []
    assert text.startswith("#!/bin/bash\n") and text.endswith("echo hello\n")
    return [x for x in text.splitlines()[1:] if x.startswith("#") and x not in script]


@pytest.mark.parametrize(
    ("scheduler", "lines"),
    [
        (
            "SLURM",
            [
                "#SBATCH --nodes=2",
                "#SBATCH --ntasks-per-node=4",
                "#SBATCH --time=01:30:00",
                "#SBATCH --mem=4096M",
                "#SBATCH --exclusive",
            ],
        ),
        (
            "PBSPro",
            [
                "#PBS -l select=2:ncpus=4:mpiprocs=4:mem=4096mb",
                "#PBS -l walltime=01:30:00",
                "#PBS --exclusive",
            ],
        ),
        (
            "LSF",
            [
                "#BSUB -n 8",
                '#BSUB -R "span[ptile=4]"',
                "#BSUB -W 1:30",
                "#BSUB -M 4096MB",
                "#BSUB --exclusive",
            ],
        ),
        (
            "Fugaku",
            [
                "#PJM -L node=2",
                "#PJM --mpi max-proc-per-node=4",
                "#PJM -L elapse=01:30:00",
                "#PJM -L node-mem=4096Mi",
                "#PJM --exclusive",
            ],
        ),
    ],
)
def test_each_scheduler_writes_its_own_directives(scheduler: str, lines: list[str]) -> None:
    assert added(scheduler, ALL) == lines


@pytest.mark.parametrize("scheduler", ["SGE", "UGE"])
def test_grid_engine_directives_and_its_missing_node_count(scheduler: str) -> None:
    d = Directives(cores=4, elapsed=60, memory=512, extra=("-V",))
    assert added(scheduler, d) == [
        "#$ -pe smp 4",
        "#$ -l h_rt=00:01:00",
        "#$ -l h_vmem=512M",
        "#$ -V",
    ]
    with pytest.raises(ExecutorError, match="Grid Engine has no node count"):
        added(scheduler, Directives(nodes=2))


def test_the_scripts_own_directives_win_and_are_not_repeated() -> None:
    script = "#!/bin/bash\n#SBATCH -N 8\n#SBATCH --time 2:00:00\n#SBATCH --exclusive\necho hello\n"
    assert added("SLURM", ALL, script) == ["#SBATCH --ntasks-per-node=4", "#SBATCH --mem=4096M"]
    pbs = "#!/bin/bash\n#PBS -l walltime=00:10:00\n#PBS -l select=1:ncpus=1\necho hello\n"
    assert added("PBSPro", ALL, pbs) == ["#PBS --exclusive"]
    pjm = "#!/bin/bash\n#PJM -L node=1,elapse=0:10:00\necho hello\n"
    extra = Directives(nodes=3, elapsed=60, extra=("-L elapse=1:00:00", "#PJM -L node=4", "-S"))
    assert added("Fugaku", extra, pjm) == ["#PJM -S"]


def test_nothing_to_add_leaves_the_script_as_it_is() -> None:
    slurm = load_schedulers()["SLURM"]
    assert slurm.with_directives(SCRIPT, Directives()) is None
    own = "#!/bin/sh\n#SBATCH --nodes=2\ntrue\n"
    assert slurm.with_directives(own, Directives(nodes=4)) is None
    # no #! line: the directives come first
    assert slurm.with_directives("true\n", Directives(nodes=1)) == "#SBATCH --nodes=1\ntrue\n"


def test_a_queue_chosen_by_the_script_keeps_the_command_lines_queue_away() -> None:
    found = load_schedulers()
    assert found["SLURM"].script_sets_queue("#!/bin/sh\n#SBATCH -p debug\ntrue\n")
    assert found["SLURM"].script_sets_queue("#!/bin/sh\n#SBATCH --partition=debug\n")
    assert found["Fugaku"].script_sets_queue("#!/bin/sh\n#PJM -L rscgrp=small,node=1\n")
    assert not found["Fugaku"].script_sets_queue("#!/bin/sh\n#PJM -L node=1\n")
    # a directive after the first command is no directive
    assert not found["SLURM"].script_sets_queue("#!/bin/sh\ntrue\n#SBATCH -p debug\n")


def test_resource_properties_are_checked_with_clear_errors() -> None:
    where = "/p/t/cmp.wheel.json"
    d = directives_from(
        {"nodes": "2", "cores": 4, "elapsedTime": "1:30:00", "memory": "4G", "jobDirectives": []},
        where,
    )
    assert d == Directives(nodes=2, cores=4, elapsed=5400, memory=4096)
    assert directives_from({"elapsedTime": 90, "memory": "1.5 GiB"}, where).memory == 1536
    assert directives_from({"memory": 100}, where).memory == 100
    assert directives_from({"jobDirectives": "-V\n\n-S"}, where).extra == ("-V", "-S")
    for props, message in [
        ({"nodes": 0}, r"\[nodes\]: must be a whole number of at least 1, not 0"),
        ({"cores": True}, r"\[cores\]: must be a whole number of at least 1, not true"),
        ({"elapsedTime": "1h"}, r"\[elapsedTime\]: must be a time as HH:MM:SS"),
        ({"memory": "lots"}, r"\[memory\]: must be an amount such as 4G"),
        ({"jobDirectives": [3]}, r"\[jobDirectives\]: must be a list of directive lines"),
        ({"jobDirectives": ["a\nb"]}, r"\[jobDirectives\]: .* holds a line break"),
    ]:
        with pytest.raises(ExecutorError, match=message) as e:
            directives_from(props, where)
        assert str(e.value).startswith(where)


def test_a_scheduler_without_a_directive_format_says_so(config_dir: Path) -> None:
    (config_dir / "jobScheduler.json").write_text(
        '{"Mine": {"submit": "qsub", "del": "qdel", "stat": "qstat", "reJobID": "(\\\\d+)",'
        ' "reRunning": "{{ JOBID }} R", "reReturnCode": "{{ JOBID }} E (\\\\d+)"}}'
    )
    with pytest.raises(ExecutorError, match="scheduler Mine has no known directive format"):
        load_schedulers()["Mine"].with_directives(SCRIPT, Directives(nodes=1))


def _job(p: Project, body: str, **props: object) -> None:
    sharin.add_task(p, "t", body, host="fugaku", useJobScheduler=True, **props)


def test_elapsed_time_reaches_the_job_as_a_directive(project: Project, pjm: Pjm) -> None:
    _job(project, "sleep 5", elapsedTime=1, nodes=1)

    result = sharin.run(project)

    assert result.state == "failed"  # the stand-in enforced the 1 s limit it read in the script
    [submit] = pjm.call_lines("pjsub")
    assert submit[-1] == "./run.sharin.sh"
    text = (project.root / "t" / "run.sharin.sh").read_text()
    assert "#PJM -L node=1\n#PJM -L elapse=00:00:01\n" in text
    assert "sleep 5" in (project.root / "t" / "run.sh").read_text()  # the user's file unchanged
    assert "elapse limit" in journal_tasks(project.root, 1)["t"].message


def test_the_scripts_own_elapse_limit_wins(project: Project, pjm: Pjm) -> None:
    _job(project, "sleep 1.5; echo done", elapsedTime=1)
    script = project.root / "t" / "run.sh"
    lines = script.read_text().splitlines(keepends=True)
    script.write_text(
        lines[0] + "#PJM -L elapse=0:00:30\n#PJM -L rscgrp=mine\n" + "".join(lines[1:])
    )
    sharin.set_property(project, "t", "queue", "small")

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    [submit] = pjm.call_lines("pjsub")
    assert submit == ["-X", "./run.sh"]  # nothing to add; the script's queue, not rscgrp=small


def test_the_job_script_is_never_written_through_a_link(
    project: Project, pjm: Pjm, tmp_path: Path
) -> None:
    _job(project, "echo ran", nodes=1)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    task = project.root / "t"
    (task / "run.sharin.sh").symlink_to(outside)
    (task / "run.sharin.sh.tmp").symlink_to(outside)

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert outside.read_text() == "keep"
    assert not (task / "run.sharin.sh").is_symlink()
    assert "#PJM -L node=1" in (task / "run.sharin.sh").read_text()


def test_a_user_scheduler_may_name_its_family(config_dir: Path) -> None:
    mine = {
        "submit": "sbatch",
        "del": "scancel",
        "stat": "squeue -h -t all -o '%i|%T' -j",
        "statAfter": "sacct -n -P --delimiter='|' -o JobID,State,ExitCode -j",
        "statDelimiter": ",",
        "reJobID": "Submitted batch job (\\d+)",
        "reRunning": "x",
        "reReturnCode": "(\\d+)",
        "family": "slurm",
    }
    (config_dir / "jobScheduler.json").write_text(json.dumps({"Mine": mine}))
    d = load_schedulers()["Mine"]
    assert d.reads_status and d.parse_status("7_1|RUNNING\n", ["7"])["7"].state == "running"
    assert added("Mine", Directives(nodes=3)) == ["#SBATCH --nodes=3"]
    for bad, message in [
        ({"family": "cray"}, r"\[Mine.family\]: must be one of gridengine, lsf"),
        ({"readsStatus": "yes"}, r"\[Mine.readsStatus\]: must be true or false"),
        ({"scriptArgument": "{path}"}, r"\[Mine.scriptArgument\]: must contain \{script\}"),
    ]:
        (config_dir / "jobScheduler.json").write_text(json.dumps({"Mine": {**mine, **bad}}))
        with pytest.raises(ProjectError, match=message):
            load_schedulers()


def test_a_job_found_again_after_a_crash_keeps_the_name_it_was_submitted_as(
    project: Project, pjm: Pjm
) -> None:
    import asyncio

    from sharin.engine import TaskSpec
    from sharin.executors import BatchExecutor, LocalTransport
    from sharin.model import load_hosts

    _job(project, "echo ran", nodes=1)
    spec = TaskSpec(
        key="t",
        name="t",
        workdir=project.root / "t",
        script="run.sh",
        env={},
        log_dir=project.root / "logs",
    )

    def executor() -> BatchExecutor:
        return BatchExecutor(load_hosts()["fugaku"], load_schedulers()["Fugaku"], LocalTransport())

    async def submit_then_recover() -> tuple[str, object]:
        first = executor()
        await first.stage_in(spec)
        handle = await first.submit(spec)
        found = await executor().recover(spec)  # a new engine: nothing in memory
        assert found is not None and found.native_id == handle.native_id
        return str(handle.data["script"]), found.data["script"]

    submitted, recovered = asyncio.run(submit_then_recover())
    assert submitted == recovered == "run.sharin.sh"
