"""The WHEEL tutorial's MNIST/TensorFlow workflow on the SSH host of ``scripts/services``, its
scripts unchanged: (b) as plain tasks there (no job scheduler), (c) as Slurm jobs submitted over
SSH. The copy of ``examples/mnist_tensorflow.wheel`` differs only in ``host`` and
``useJobScheduler``; the host's user gets ``PYTHON`` and ``MNIST_NPZ`` from their login
environment (``~/.bashrc``, read by the non-interactive sessions sharin opens, as a cluster's
environment modules would give them), written by the fixture and restored afterwards."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import sharin

from ..helpers import read_json
from ..remote.hostshell import own_dir, ssh, write_host
from ..services.available import service_env

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mnist_tensorflow.wheel"
SHARED_NPZ = REPO.parent / "shared" / "datasets" / "mnist" / "mnist.npz"

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow, pytest.mark.sshd]

_PROBE = (
    "import importlib.util, os, sys; s = importlib.util.find_spec('tensorflow'); "
    "print('%d.%d' % sys.version_info[:2]); "
    "print(os.path.dirname(os.path.dirname(s.origin)) if s and s.origin else '')"
)


def _skip(reason: str) -> None:
    if os.environ.get("SHARIN_REQUIRE_ALL"):
        pytest.fail(reason)
    pytest.skip(reason)


def _local_tensorflow() -> tuple[str, str, str]:
    """A Python here with TensorFlow (``$PYTHON``, else this one): its path, version and the
    directory its TensorFlow is installed in."""
    for python in (os.environ.get("PYTHON"), sys.executable):
        if not python:
            continue
        probe = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
        version, _, site = probe.stdout.strip().partition("\n")
        if probe.returncode == 0 and site:
            return python, version, site
    _skip("needs tensorflow (pip install -e '.[mnist]'), or PYTHON naming a Python with it")
    raise AssertionError("unreachable")


def _remote_environment() -> dict[str, str]:
    """What the host's user needs to run the scripts: this machine's Python with TensorFlow when
    the user may run it, else the host's Python of the same version with TensorFlow's
    directory on ``PYTHONPATH`` (the file system is shared), as a module would set it."""
    npz = Path(os.environ.get("MNIST_NPZ") or SHARED_NPZ)
    if not npz.is_file():
        _skip(f"needs the MNIST data ({npz}; set MNIST_NPZ)")
    python, version, site = _local_tensorflow()
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"
    if ssh(f'{python} -c "{check}"', check=False).returncode == 0:
        env = {"PYTHON": python}
    else:
        found = ssh(f"command -v python{version}", check=False).stdout.strip()
        if not found:
            _skip(f"the SSH host's user can run neither {python} nor a python{version}")
        env = {"PYTHON": found, "PYTHONPATH": site}
        test = ssh(f'PYTHONPATH={site} {found} -c "{check}"', check=False)
        if test.returncode != 0:
            _skip(f"the SSH host's user cannot read TensorFlow in {site}")
    if ssh(f"test -r {npz.resolve()}", check=False).returncode != 0:
        _skip(f"the SSH host's user cannot read {npz}")
    env["MNIST_NPZ"] = str(npz.resolve())
    return env


@pytest.fixture
def remote_login_env() -> Iterator[dict[str, str]]:
    """The host user's ``~/.bashrc`` with the example's variables added; restored after."""
    env = _remote_environment()
    user = pwd.getpwnam(service_env()["TEST_SSH_USER"])
    rc = Path(user.pw_dir) / ".bashrc"
    before = rc.read_bytes() if rc.exists() else None
    block = "".join(f"export {k}='{v}'\n" for k, v in env.items())
    rc.write_bytes(
        (before or b"") + b"# the MNIST example's environment (tests)\n" + block.encode()
    )
    os.chown(rc, user.pw_uid, user.pw_gid)
    try:
        yield env
    finally:
        if before is None:
            rc.unlink(missing_ok=True)
        else:
            rc.write_bytes(before)


@pytest.fixture
def remote_path() -> Iterator[Path]:
    with own_dir("mnist") as path:
        yield path


def _host(config_dir: Path, path: Path, **extra: object) -> None:
    write_host(config_dir, path=str(path), statusCheckInterval=2, **extra)


def _run_remote(tmp_path: Path, *, use_job_scheduler: bool) -> Path:
    project = sharin.copy_project(EXAMPLE, tmp_path / "mnist_tensorflow.wheel")
    for name in ("train", "estimate"):
        sharin.set_property(project.root, name, "host", "ci-ssh")
        sharin.set_property(project.root, name, "useJobScheduler", use_job_scheduler)
        original = read_json(EXAMPLE / name / "cmp.wheel.json")
        copy = read_json(project.root / name / "cmp.wheel.json")
        changed = {k for k in original.keys() | copy.keys() if original.get(k) != copy.get(k)}
        assert changed <= {"host", "useJobScheduler"}, changed
        assert (project.root / name / "run.sh").read_bytes() == (
            EXAMPLE / name / "run.sh"
        ).read_bytes()
    assert sharin.validate(sharin.open_project(project.root)) == []

    result = sharin.run(project.root)

    assert result.ok, result.failed
    assert result.counts == {"finished": 2}
    root = project.root
    log = (root / "estimate" / "eval.log").read_text()
    acc = float(re.findall(r"Test accuracy: ([0-9.]+)", log)[-1])
    assert acc >= 0.925, log
    assert (root / "train" / "learn.log").stat().st_size > 0  # logs back
    return root


def _carried_on_host(remote_path: Path) -> None:
    """Both ran on the host: the weights stayed there, linked from train's directory into
    estimate's (as OPEN-WHEEL does), without a round trip through this machine."""
    [run_dir] = [d for d in remote_path.iterdir() if d.is_dir() and d.name != ".sharin"]
    made = run_dir / "train" / "param.hdf5"
    assert made.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert (run_dir / "estimate" / "param.hdf5").is_symlink()
    assert (run_dir / "estimate" / "param.hdf5").samefile(made)


@pytest.mark.timeout(900)
def test_mnist_runs_as_plain_tasks_on_the_ssh_host(
    tmp_path: Path,
    config_dir: Path,
    remote_path: Path,
    remote_login_env: dict[str, str],
) -> None:
    _host(config_dir, remote_path)
    _run_remote(tmp_path, use_job_scheduler=False)
    # it ran on the host, in <path>/<run>/<component>
    [run_dir] = [d for d in remote_path.iterdir() if d.is_dir() and d.name != ".sharin"]
    assert (run_dir / "estimate" / "eval.log").is_file()
    _carried_on_host(remote_path)


@pytest.mark.slurm
@pytest.mark.timeout(900)
def test_mnist_runs_as_slurm_jobs_over_ssh(
    tmp_path: Path,
    config_dir: Path,
    remote_path: Path,
    remote_login_env: dict[str, str],
) -> None:
    _host(config_dir, remote_path, jobScheduler="SLURM")
    root = _run_remote(tmp_path, use_job_scheduler=True)
    _carried_on_host(remote_path)
    # Slurm ran them: the job ids are in the runs' records
    said = (root / ".sharin").rglob("*")
    assert any(b"Submitted batch job" in f.read_bytes() for f in said if f.is_file()), (
        "no Slurm submission recorded"
    )
