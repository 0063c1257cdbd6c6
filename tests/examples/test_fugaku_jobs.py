"""examples/fugaku_jobs.wheel: a bulk job and a step job through the PJM stand-in, end to end."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import sharin

from ..conftest import Pjm

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "fugaku_jobs.wheel"


def test_the_example_is_valid(pjm: Pjm) -> None:
    assert sharin.validate(sharin.open_project(EXAMPLE)) == []


def test_the_example_runs(pjm: Pjm, tmp_path: Path) -> None:
    p = sharin.copy_project(EXAMPLE, tmp_path / "fugaku_jobs")

    result = sharin.run(p)

    assert result.state == "finished", result.failed
    report = (p.root / "report" / "report.md").read_text().splitlines()
    assert report[2:7] == [f"| {n} | x={n + 1} y={2 * (n + 1) ** 2 + 1} |" for n in range(5)]
    assert report[-1] == "solution=30"
    [bulk] = [a for a in pjm.call_lines("pjsub") if "--bulk" in a]
    assert bulk[bulk.index("--sparam") + 1] == "0-4"
    steps = [a[a.index("--sparam") + 1] for a in pjm.call_lines("pjsub") if "--step" in a]
    numbers = [x.split("sn=", 1)[1].split(",")[0] for x in steps]
    # each step once; a step whose join PJM refused (on a loaded machine the steps before it
    # can all end first) once more, as the start of a new step job
    assert sorted(set(numbers)) == ["0", "1", "2"], steps
    assert all(numbers.count(n) <= 2 for n in numbers), steps


def test_the_demo_script_runs(tmp_path: Path) -> None:
    env = dict(os.environ, FUGAKU_WORK=str(tmp_path / "work"))
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "fugaku-jobs.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| 4 | x=5 y=51 |" in proc.stdout and "solution=30" in proc.stdout
