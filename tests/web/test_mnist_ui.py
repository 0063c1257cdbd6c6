"""The WHEEL tutorial's MNIST workflow built in the browser as its tutorial says — two tasks,
train and estimate, their run.sh written in the editor, param.hdf5 sent from one to the other
— run, and the test accuracy read in the file view; a third task draws the learning curve from
train's log and sends it to a viewer, which shows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import start_server
from .test_ui import (
    _add_component,
    _add_task,
    _drag,
    _node,
    _page,
    _select,
    _set,
    _shot,
    _write_script,
)

#: the learning curve, drawn from what Keras wrote to learn.log (each epoch's last line holds
#: its accuracy and val_accuracy)
CURVE = r"""PYTHON=${PYTHON:-$(command -v python || command -v python3)}
"$PYTHON" - <<'EOF'
import re
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
text = open('learn.log', errors='replace').read()
rows = [x for x in re.split(r'[\r\n\x08]+', text) if 'val_accuracy' in x]
train = [float(re.search(r'(?<!val_)accuracy: ([0-9.]+)', x).group(1)) for x in rows]
test = [float(re.search(r'val_accuracy: ([0-9.]+)', x).group(1)) for x in rows]
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(train, label='train')
ax.plot(test, label='test')
ax.set_xlabel('epoch')
ax.set_ylabel('accuracy')
ax.legend()
fig.tight_layout()
fig.savefig('curve.png', dpi=80)
print(len(rows), 'epochs')
EOF
"""


def _output(page: Any, component: str, name: str) -> None:
    _select(page, component)
    page.fill("[data-test=add-output]", name)
    page.press("[data-test=add-output]", "Enter")
    page.wait_for_selector(f".node[data-node={component}] .file-out:has-text('{name}')")


def _file_edge(page: Any, src: str, name: str, dst: str) -> None:
    _drag(
        page,
        _node(page, src).locator(f"[data-handleid='out:{name}']"),
        _node(page, dst).locator("[data-handleid='in:+']"),
    )
    page.wait_for_selector(f".node[data-node={dst}] .file-in:has-text('{name}')")


REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mnist_tensorflow.wheel"
SHARED_NPZ = REPO.parent / "shared" / "datasets" / "mnist" / "mnist.npz"

pytestmark = [pytest.mark.browser, pytest.mark.tensorflow, pytest.mark.slow]


def _tensorflow_python() -> tuple[str, Path]:
    python = os.environ.get("PYTHON") or sys.executable
    npz = Path(os.environ.get("MNIST_NPZ") or SHARED_NPZ)
    has_tf = (
        subprocess.run(
            [
                python,
                "-c",
                "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is None)",
            ],
            capture_output=True,
        ).returncode
        == 0
    )
    missing = []
    if not has_tf:
        missing.append(f"tensorflow in {python} (set PYTHON to a Python that has it)")
    if not npz.is_file():
        missing.append(f"MNIST data ({npz}; set MNIST_NPZ)")
    if missing:
        reason = "needs " + " and ".join(missing)
        if os.environ.get("SHARIN_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)
    return python, npz.resolve()


@pytest.mark.timeout(900)
def test_the_mnist_tutorial_built_in_the_browser_reaches_its_accuracy(
    browser: Any, tmp_path: Path
) -> None:
    python, npz = _tensorflow_python()
    ws = tmp_path / "ws"
    ws.mkdir()
    with start_server(ws, {"PYTHON": python, "MNIST_NPZ": str(npz)}) as server:
        page = _page(browser, server, tmp_path)
        page.fill("[data-test=new-name]", "mnist")
        page.click("[data-test=create]")
        page.wait_for_selector("[data-test=project-name]:has-text('mnist')")
        _add_task(page, 120, 80, "train")
        _add_task(page, 520, 260, "estimate")
        for name in ("train", "estimate"):
            _write_script(page, name, (EXAMPLE / name / "run.sh").read_text())
        for name, log in (("train", "learn.log"), ("estimate", "eval.log")):
            _select(page, name)
            _set(page, "script", "run.sh")
            _set(page, "include", log)
        _select(page, "train")
        page.fill("[data-test=add-output]", "param.hdf5")
        page.press("[data-test=add-output]", "Enter")
        page.wait_for_selector(".node[data-node=train] .file-out:has-text('param.hdf5')")
        _drag(
            page,
            _node(page, "train").locator("[data-handleid='out:param.hdf5']"),
            _node(page, "estimate").locator("[data-handleid='in:+']"),
        )
        page.wait_for_selector(".node[data-node=estimate] .file-in:has-text('param.hdf5')")
        # the learning curve: a task reading train's log, its picture sent to a viewer
        _add_task(page, 120, 420, "curve")
        _write_script(page, "curve", CURVE)
        _select(page, "curve")
        _set(page, "script", "run.sh")
        _add_component(page, "viewer", 520, 480, "show")
        _output(page, "train", "learn.log")
        _file_edge(page, "train", "learn.log", "curve")
        _output(page, "curve", "curve.png")
        _file_edge(page, "curve", "curve.png", "show")
        page.click("[data-test=save]")
        page.click("[data-test=dialog-ok]")
        page.wait_for_selector("[role=status]:has-text('saved')")
        page.click("[data-test=run]")
        page.wait_for_selector(
            ".node[data-node=train] .node-state[data-state=running]", timeout=120_000
        )
        _shot(page, tmp_path, "mnist-running")
        page.wait_for_selector(
            ".node[data-node=estimate] .node-state[data-state=finished]", timeout=600_000
        )
        page.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=60_000)
        _shot(page, tmp_path, "mnist-finished")

        _select(page, "estimate")
        page.click("[data-test=open-files]")
        page.click("[data-file='eval.log'] a")
        page.wait_for_selector(".cm-content:has-text('Test accuracy')")
        _shot(page, tmp_path, "mnist-eval-log")
        text = page.locator(".cm-content").inner_text()
        acc = float(re.findall(r"Test accuracy: ([0-9.]+)", text)[-1])
        assert 0.925 <= acc <= 0.935, acc

        page.click("[data-test=tab-viewer]")  # the run has finished: curve too
        page.locator("[data-test=gallery] img").wait_for(timeout=60_000)
        page.wait_for_function(
            "document.querySelector('[data-test=gallery] img').naturalWidth >= 300",
            timeout=60_000,
        )
        _shot(page, tmp_path, "mnist-learning-curve")
        assert page._sharin_errors == []
