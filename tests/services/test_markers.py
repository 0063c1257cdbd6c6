"""The service markers without their services: skipped, or failed under SHARIN_REQUIRE_ALL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_marked_tests(state_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One test of each marker, with an empty state directory (no service runs there)."""
    tests = [
        "tests/services/test_slurm.py::test_partitions_debug_is_the_default",
        "tests/services/test_sge.py::test_qdel",
        "tests/services/test_pbs.py::test_unknown_job",
        "tests/services/test_sshd.py::test_sshd_restart",
    ]
    environ = {k: v for k, v in os.environ.items() if k != "SHARIN_REQUIRE_ALL"}
    environ.update(TEST_SERVICES_DIR=str(state_dir), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *tests],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_absent_services_skip_or_fail(tmp_path: Path) -> None:
    state = tmp_path / "services"
    state.mkdir()
    proc = run_marked_tests(state)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 skipped" in proc.stdout, proc.stdout
    assert "is not running: start them with" in proc.stdout or "need root" in proc.stdout

    proc = run_marked_tests(state, SHARIN_REQUIRE_ALL="1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "4 errors" in proc.stdout, proc.stdout
    assert "service absent and SHARIN_REQUIRE_ALL is set" in proc.stdout
    assert list(state.iterdir()) == []  # checking whether a service runs starts nothing
