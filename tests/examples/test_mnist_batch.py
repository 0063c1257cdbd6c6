"""The WHEEL tutorial's MNIST workflow with ``train`` and ``estimate`` as batch jobs, its scripts
unchanged: on this machine's Slurm, on its Grid Engine and through the PJM stand-in (a few
minutes each). Only ``host`` and ``useJobScheduler`` of the two tasks differ from the local run;
the hosts are a ``remotehost.json`` in the test's own configuration directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sharin
from sharin.engine import JobHandle

from ..helpers import journal_tasks
from ..services.available import service_env
from .test_mnist import EXAMPLE, SHARED_NPZ

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

#: what differs from the local run, and only that
_CHANGED = ("host", "useJobScheduler")


def _python_with_tensorflow() -> str:
    """``$PYTHON`` (the example's scripts run it) or this interpreter, if it has TensorFlow."""
    python = os.environ.get("PYTHON") or sys.executable
    npz = Path(os.environ.get("MNIST_NPZ") or SHARED_NPZ)
    found = subprocess.run(
        [python, "-c", "import importlib.util as u, sys; sys.exit(not u.find_spec('tensorflow'))"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    missing = []
    if found.returncode != 0:
        missing.append(f"tensorflow in {python} (set PYTHON to an interpreter that has it)")
    if not npz.is_file():
        missing.append(f"MNIST data ({npz}; set MNIST_NPZ)")
    if missing:
        reason = "needs " + " and ".join(missing)
        if os.environ.get("SHARIN_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def _cases() -> list[object]:
    return [
        pytest.param("SLURM", None, marks=pytest.mark.slurm, id="slurm"),
        pytest.param("SGE", "sge-jobs", marks=pytest.mark.sge, id="sge-staged"),
        pytest.param("Fugaku", "pjm-jobs", id="pjm-standin-staged"),
    ]


@pytest.mark.parametrize(("scheduler", "staged"), _cases())
def test_mnist_as_batch_jobs(
    scheduler: str,
    staged: str | None,
    tmp_path: Path,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    python = _python_with_tensorflow()
    monkeypatch.setenv("PYTHON", python)
    monkeypatch.setenv("MNIST_NPZ", str(Path(os.environ.get("MNIST_NPZ") or SHARED_NPZ).resolve()))
    if scheduler == "Fugaku":
        request.getfixturevalue("pjm")  # the stand-in on PATH (it writes a host of its own)
    else:
        for k, v in service_env().items():
            monkeypatch.setenv(k, v)
    host: dict[str, object] = {
        "name": "batch",
        "host": "localhost",
        "transport": "local",
        "jobScheduler": scheduler,
        "statusCheckInterval": 1,
        "numJob": 1,
    }
    if staged is not None:
        host["path"] = str(tmp_path / staged)
    (config_dir / "remotehost.json").write_text(json.dumps([host]))

    project = sharin.copy_project(EXAMPLE, tmp_path / "mnist_tensorflow.wheel")
    for name in ("train", "estimate"):
        sharin.set_property(project, name, "host", "batch")
        sharin.set_property(project, name, "useJobScheduler", True)
    for name in ("train", "estimate"):
        mine = json.loads((project.root / name / "cmp.wheel.json").read_text())
        theirs = json.loads((EXAMPLE / name / "cmp.wheel.json").read_text())
        assert {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)} == set(
            _CHANGED
        )
        assert (project.root / name / "run.sh").read_bytes() == (
            EXAMPLE / name / "run.sh"
        ).read_bytes()
    assert sharin.validate(sharin.open_project(project.root)) == []

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    root = project.root
    log = (root / "estimate" / "eval.log").read_text()
    acc = float(re.findall(r"Test accuracy: ([0-9.]+)", log)[-1])
    assert acc >= 0.925, log
    assert (root / "train" / "learn.log").stat().st_size > 0
    tasks = journal_tasks(root, 1)
    if staged is None:
        assert (root / "estimate" / "param.hdf5").is_file()  # carried from train
        assert (root / "estimate" / "param.hdf5").read_bytes() == (
            root / "train" / "param.hdf5"
        ).read_bytes()
    else:
        # both ran on one host: the weights stayed there, linked from train's directory into
        # estimate's (as OPEN-WHEEL does), without a round trip through this machine
        dirs = {
            n: Path(str(JobHandle.from_json(tasks[n].handle or "").data["dir"]))
            for n in ("train", "estimate")
        }
        made = dirs["train"] / "param.hdf5"
        assert made.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
        assert (dirs["estimate"] / "param.hdf5").is_symlink()
        assert (dirs["estimate"] / "param.hdf5").samefile(made)
    runs = root / ".sharin" / "runs" / "1"
    for name in ("train", "estimate"):
        handle = JobHandle.from_json(tasks[name].handle or "")
        assert handle.executor == "batch" and handle.host == "batch"
        out = (runs / f"{name}.out").read_text()
        assert handle.native_id in out.splitlines()[0]  # the submission, then the job's output
        job_dir = Path(str(handle.data["dir"]))
        if staged is None:
            assert job_dir == root / name
        else:
            assert job_dir.parent.parent == tmp_path / staged and job_dir.name == name
    # the job's own output (TensorFlow writes its notices to stderr) is in sharin's logs
    said = "".join(f.read_text() for f in runs.glob("train.*") if f.suffix in (".out", ".err"))
    assert len(said.splitlines()) > 1, said
