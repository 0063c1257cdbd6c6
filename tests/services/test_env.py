"""What scripts/services/env.sh exports (sourced by scripts/test.sh for the whole suite)."""

from __future__ import annotations

import os
import subprocess

from .available import SCRIPTS


def sourced_env(**extra: str) -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(SCRIPTS / "env.sh")],
        env={"PATH": os.environ["PATH"], **extra},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(line.split("=", 1) for line in out.split("\0") if "=" in line)


def test_no_sharin_variables() -> None:
    # SHARIN_* is the environment sharin gives its tasks: the services' variables stay out of it
    assert [k for k in sourced_env() if k.startswith("SHARIN_")] == []


def test_paths_follow_the_state_directory() -> None:
    env = sourced_env(TEST_SERVICES_DIR="/srv/state")
    assert env["SLURM_CONF"] == "/srv/state/etc/slurm.conf"
    assert env["TEST_SSH_KEY"] == "/srv/state/ssh/id_ed25519"
    assert env["TEST_SSH_KNOWN_HOSTS"] == "/srv/state/ssh/known_hosts"
    assert env["TEST_TORQUE_BIN"] == "/srv/state/torque/bin"
    assert env["TEST_SERVICES_SCRIPTS"] == str(SCRIPTS)
