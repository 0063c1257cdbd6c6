"""``sharin run`` answers an SSH login's prompts (a key's passphrase here; a password or
one-time code takes the same path) through ``ask``, again when a dropped connection is opened
anew, and without anyone to ask fails the task with what to do — against the real sshd and Slurm."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import sharin
from sharin.model import Project

from ..helpers import kill_group
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
        name = f"{host.prefix}-t"
        assert host.wait_for_accounting({name}) == {name: 1}


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


@pytest.mark.parametrize("answer", ["s3cret", "end of input"])
def test_sharin_run_on_a_terminal_prompts_for_the_passphrase(
    project: Project, tmp_path: Path, config_dir: Path, answer: str
) -> None:
    """The answer typed makes the run; no answer (end of input) fails the task, naming the
    key, with no traceback."""
    with watched_host(tmp_path, config_dir) as host:
        _encrypted(host)
        _task(project, host)
        main, sub = os.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sharin", "run", str(project.root)],
            stdin=sub,
            stdout=sub,
            stderr=sub,
            env={**os.environ, "TERM": "xterm"},
            start_new_session=True,
        )
        os.close(sub)
        seen = b""
        try:
            deadline = time.monotonic() + 60
            while b"passphrase for" not in seen:
                assert time.monotonic() < deadline, seen.decode(errors="replace")
                ready, _, _ = select.select([main], [], [], 1.0)
                if ready:
                    try:
                        seen += os.read(main, 4096)
                    except OSError:  # the run ended without asking
                        pytest.fail(f"no prompt: {seen.decode(errors='replace')}")
            os.write(main, b"s3cret\n" if answer == "s3cret" else b"\x04")
            while proc.poll() is None:
                ready, _, _ = select.select([main], [], [], 1.0)
                if ready:
                    with contextlib.suppress(OSError):
                        seen += os.read(main, 4096)
                assert time.monotonic() < deadline + 60, seen.decode(errors="replace")
        finally:
            kill_group(proc.pid)
            os.close(main)
        text = seen.decode(errors="replace")
        assert "Traceback" not in text, text
        if answer == "s3cret":
            assert proc.returncode == 0, text
            assert "s3cret" not in text  # not echoed
            assert (project.root / "t" / "out.txt").read_text().strip().isdigit()
        else:
            assert proc.returncode == 1, text
            assert "refused the login" in text, text  # no answer: a clear refusal
