"""The WHEEL tutorial's MNIST/TensorFlow workflow, run end to end by sharin (about a minute)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sharin

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mnist_tensorflow.wheel"
SHARED_NPZ = REPO.parent / "shared" / "datasets" / "mnist" / "mnist.npz"

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


def _need_tensorflow() -> Path:
    npz = Path(os.environ.get("MNIST_NPZ") or SHARED_NPZ)
    missing = []
    if importlib.util.find_spec("tensorflow") is None:
        missing.append("tensorflow (pip install -e '.[mnist]')")
    if not npz.is_file():
        missing.append(f"MNIST data ({npz}; set MNIST_NPZ)")
    if missing:
        reason = "needs " + " and ".join(missing)
        if os.environ.get("SHARIN_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)
    return npz.resolve()


def test_example_is_valid_wheel_project() -> None:
    p = sharin.open_project(EXAMPLE)
    assert sharin.validate(p) == []
    train, estimate = p.component("train"), p.component("estimate")
    assert train.script == "run.sh" and estimate.script == "run.sh"
    assert [o.name for o in train.output_files] == ["param.hdf5"]
    assert [(i.name, i.src[0].node) for i in estimate.input_files] == [("param.hdf5", train.id)]
    assert train.include == ["learn.log"] and estimate.include == ["eval.log"]


def test_mnist_reproduces_tutorial_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npz = _need_tensorflow()
    monkeypatch.setenv("MNIST_NPZ", str(npz))
    monkeypatch.setenv("PYTHON", sys.executable)
    project = sharin.copy_project(EXAMPLE, tmp_path / "mnist_tensorflow.wheel")
    result = sharin.run(project)
    assert result.ok, result.failed
    assert result.counts == {"finished": 2}
    log = (project.root / "estimate" / "eval.log").read_text()
    acc = float(re.findall(r"Test accuracy: ([0-9.]+)", log)[-1])
    loss = float(re.findall(r"Test loss: ([0-9.]+)", log)[-1])
    assert 0.925 <= acc <= 0.935, acc
    assert loss <= 0.29, loss
    assert (project.root / "train" / "learn.log").stat().st_size > 0
    assert (project.root / "estimate" / "param.hdf5").is_symlink()
    check = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "check_mnist.py"),
            str(project.root / "estimate" / "eval.log"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout
    # WHEEL sees the run too: states in each cmp.wheel.json and status.wheel.txt
    reopened = sharin.open_project(project.root)
    assert reopened.state == "finished"
    assert reopened.component("estimate").state == "finished"
    assert (project.root / "estimate" / "status.wheel.txt").read_text().splitlines()[
        0
    ] == "finished"


PS_EXAMPLE = REPO / "examples" / "mnist_parameter_study.wheel"


def test_parameter_study_variant_sweeps_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npz = _need_tensorflow()
    monkeypatch.setenv("MNIST_NPZ", str(npz))
    monkeypatch.setenv("MNIST_EPOCHS", "2")  # a short sweep; the shipped default is 20 epochs
    monkeypatch.setenv("PYTHON", sys.executable)
    project = sharin.copy_project(PS_EXAMPLE, tmp_path / "mnist_parameter_study.wheel")
    assert sharin.validate(project) == []
    result = sharin.run(project)
    assert result.ok, result.failed
    root = project.root
    assert sorted(p.name for p in root.glob("sweep_*")) == [
        "sweep_batch_size_128",
        "sweep_batch_size_256",
        "sweep_batch_size_64",
    ]
    rendered = (root / "sweep_batch_size_64" / "train" / "run.sh").read_text()
    assert "batch_size = 64" in rendered and "{{" not in rendered
    table = (root / "summarize" / "results.md").read_text().splitlines()
    rows = [line.split("|")[1:-1] for line in table[2:]]
    assert [int(r[0]) for r in rows] == [64, 128, 256]
    assert all(0.85 <= float(r[2]) <= 0.95 for r in rows), table
    curves = sorted(p.name for p in (root / "curves" / "results").glob("*.png"))
    assert curves == ["curve_bs128.png", "curve_bs256.png", "curve_bs64.png"]
    assert (root / "sweep" / "results" / "curve_bs64.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
