"""Whether the test services of ``scripts/services`` run here, and the environment to reach them.

Used by ``tests/conftest.py`` (the ``slurm``, ``sge``, ``pbs`` and ``sshd`` markers skip, or fail
under ``SHARIN_REQUIRE_ALL=1``, when their service is absent) and by ``tests/services``' fixtures.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "services"

# marker -> the scripts whose `status` must succeed
_NEEDS = {
    "slurm": ("slurm",),
    "sge": ("sge",),
    "pbs": ("slurm", "pbs"),
    "sshd": ("sshd",),
}
MARKERS = tuple(_NEEDS)

HOW = "start them with `sudo scripts/services/up.sh` (see README, Test services)"


@functools.cache
def service_env() -> dict[str, str]:
    """The variables ``scripts/services/env.sh`` exports (for the state directory in effect)."""
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(SCRIPTS / "env.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    env = dict(line.split("=", 1) for line in out.split("\0") if "=" in line)
    return {k: v for k, v in env.items() if k.startswith(("TEST_", "SLURM_CONF", "SGE_"))}


@functools.cache
def _status(script: str) -> str | None:
    if os.geteuid() != 0:
        return "the test services need root"
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPTS / f"{script}.sh"), "status"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, **service_env()},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{script}: status check failed ({e})"
    if proc.returncode != 0:
        return f"{script} is not running"
    return None


def missing(marker: str) -> str | None:
    """Why the service behind ``marker`` cannot be used here, or None when it runs."""
    for script in _NEEDS[marker]:
        reason = _status(script)
        if reason is not None:
            return f"{reason}: {HOW}"
    return None
