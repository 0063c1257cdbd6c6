"""A task submitted as a Slurm job on a host reached over SSH: staged to the host's ``path``,
submitted with ``sbatch`` in an SSH session, watched with one status query per poll, its output
files and logs brought back — against the real sshd and Slurm of ``scripts/services``."""

from __future__ import annotations

from pathlib import Path

import pytest

import sharin
from sharin.model import Project

from .hostshell import home, write_host

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


def _host(config_dir: Path, **extra: object) -> None:
    # the test host shares this machine's file system: its user's home is a local path
    path = f"{home()}/sharin-jobs"
    write_host(config_dir, path=path, jobScheduler="SLURM", statusCheckInterval=1, **extra)


def test_a_task_runs_as_a_slurm_job_over_ssh_and_its_outputs_come_back(
    project: Project, config_dir: Path
) -> None:
    _host(config_dir)
    sharin.add_task(
        project,
        "make",
        'echo "$(hostname -s) $SLURM_JOB_ID" > made.txt; echo to-log; exit 0',
        host="ci-ssh",
    )
    sharin.set_property(project.root, "make", "useJobScheduler", True)
    sharin.set_property(project.root, "make", "outputFiles", [{"name": "made.txt", "dst": []}])
    assert sharin.validate(sharin.open_project(project.root)) == []

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    made = (project.root / "make" / "made.txt").read_text().split()
    assert len(made) == 2 and made[1].isdigit(), made  # written by the job, on Slurm's node
    # the job's standard output came back too
    logs = [f for f in project.root.rglob("*") if f.is_file() and b"to-log" in f.read_bytes()]
    assert [f for f in logs if f.name != "run.sh" and f.suffix != ".sh"], sorted(
        str(f.relative_to(project.root)) for f in project.root.rglob("*") if f.is_file()
    )
