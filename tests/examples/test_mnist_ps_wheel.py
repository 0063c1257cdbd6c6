"""The MNIST parameter-study example as WHEEL runs it, checked without TensorFlow: its files
flow as WHEEL delivers them (the viewer gets image files, never a directory), and sharin runs
it with the training replaced by stand-ins that write what the real scripts write."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import sharin
from sharin.model import wheel_notes

REPO = Path(__file__).resolve().parents[2]
PS_EXAMPLE = REPO / "examples" / "mnist_parameter_study.wheel"

TRAIN = """#!/bin/bash
# stand-in for the training: what the real run.sh leaves, for batch size {{ batch_size }}
printf '\\x89PNG\\r\\n\\x1a\\n{{ batch_size }}' > curve.png
echo '{"loss": [1.0]}' > history.json
echo weights > param.hdf5
"""
ESTIMATE = """#!/bin/bash
printf 'Test loss: 0.25\\nTest accuracy: 0.9\\n' > eval.log
"""


def test_the_example_has_nothing_wheel_cannot_run() -> None:
    p = sharin.open_project(PS_EXAMPLE)
    assert sharin.validate(p) == []
    assert wheel_notes(p) == []
    viewer = p.component("curves")
    [inp] = viewer.input_files
    assert [link.name for link in inp.src] == ["results/*.png"]  # files, not the directory


def test_the_viewer_gets_each_curve_as_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON", sys.executable)
    project = sharin.Project.copy(PS_EXAMPLE, tmp_path / "mnist_parameter_study.wheel", git=False)
    root = project.root
    (root / "sweep" / "train" / "run.sh").write_text(TRAIN)
    (root / "sweep" / "estimate" / "run.sh").write_text(ESTIMATE)

    result = sharin.run(root)

    assert result.ok, result.failed
    curves = sorted((root / "curves" / "results").iterdir())
    assert [c.name for c in curves] == ["curve_bs128.png", "curve_bs256.png", "curve_bs64.png"]
    for c in curves:
        assert c.is_file() and c.read_bytes().startswith(b"\x89PNG")
    assert not (root / "curves" / "results" / "history_bs64.json").exists()
    table = (root / "summarize" / "results.md").read_text().splitlines()
    assert [int(r.split("|")[1]) for r in table[2:]] == [64, 128, 256]
