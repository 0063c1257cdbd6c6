"""``sharin run`` answers an SSH login's prompts (a key's passphrase here; a password or
one-time code takes the same path) through ``ask``, again when a dropped connection is opened
anew, and without anyone to ask fails the task with what to do — against the real sshd and Slurm."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

import sharin
from sharin.model import Project

from .watched import WatchedHost, watched_host

pytestmark = [pytest.mark.sshd, pytest.mark.slurm, pytest.mark.slow]


def _encrypted(host: WatchedHost) -> None:
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "s3cret", "-f", host.key], check=True)


def _task(project: Project, host: WatchedHost) -> None:
    sharin.add_task(
        project,
        "t",
        'echo "$SLURM_JOB_ID" > out.txt',
        host=host.name,
        useJobScheduler=True,
        submitOption=f"-J {host.prefix}-t -o /dev/null",
        outputFiles=[{"name": "out.txt", "dst": []}],
    )


def test_a_passphrase_is_asked_for_and_asked_again_after_the_connection_dropped(
    project: Project, tmp_path: Path, config_dir: Path
) -> None:
    with watched_host(tmp_path, config_dir) as host:
        _encrypted(host)
        host.slow("sbatch", 1.5)
        _task(project, host)
        asked: list[tuple[str, bool]] = []

        def ask(prompt: str, echo: bool) -> str:
            asked.append((prompt, echo))
            return "s3cret"

        def cut_when_submitting() -> None:
            while not host.calls("sbatch"):
                threading.Event().wait(0.05)
            host.cut_connections()

        cutter = threading.Thread(target=cut_when_submitting, daemon=True)
        cutter.start()
        result = sharin.run(project.root, ask=ask)
        cutter.join(timeout=60)

        assert result.state == "finished", result.failed
        assert (project.root / "t" / "out.txt").read_text().strip().isdigit()
        assert asked == [(f"passphrase for {host.key}: ", False)] * 2
        assert host.logins() == 2
        assert host.submissions() == {f"{host.prefix}-t": 1}


def test_without_anyone_to_ask_the_task_fails_saying_what_to_do(
    project: Project, tmp_path: Path, config_dir: Path
) -> None:
    with watched_host(tmp_path, config_dir) as host:
        _encrypted(host)
        _task(project, host)
        result = sharin.run(project.root)
        assert result.state == "failed"
        [message] = result.failed
        assert str(host.key) in message and "passphrase" in message, message
        assert host.logins() == 0
