"""The SSH host in a network namespace of scripts/services: key login, Slurm from its sessions,
and the helpers that drop its link and restart its sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Services, Slurm, Ssh, wait_for

pytestmark = pytest.mark.sshd


def test_key_login_with_strict_host_key_checking(ssh: Ssh, services: Services) -> None:
    out = ssh.run("hostname; id -un; pwd").stdout.split()
    assert out == [
        "sharin-remote",
        ssh.user,
        f"{services.env['TEST_SERVICES_DIR']}/home/{ssh.user}",
    ]


def test_unknown_host_key_is_refused(ssh: Ssh, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    proc = ssh.run("true", known_hosts=empty, code=255)
    assert "Host key verification failed" in proc.stderr


def test_login_without_the_key_is_refused(ssh: Ssh, tmp_path: Path) -> None:
    other = tmp_path / "other"
    ssh.services.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other])
    proc = ssh.run("true", key=other, code=255)
    assert "Permission denied" in proc.stderr


@pytest.mark.slurm
def test_sbatch_from_an_ssh_session(ssh: Ssh, slurm: Slurm) -> None:
    out = ssh.run("sbatch --parsable --wrap 'echo $SLURM_SUBMIT_HOST; exit 5'").stdout
    job = out.strip()
    assert job.isdigit(), out
    slurm.jobs.append(job)
    assert slurm.finished(job) == {job: ("FAILED", "5:0")}
    owner = slurm.services.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%u"]).stdout
    assert owner.strip() == ssh.user
    assert ssh.run(f"cat slurm-{job}.out; rm slurm-{job}.out").stdout == "sharin-remote\n"
    # squeue and sacct answer in the session too
    assert ssh.run(f"squeue -h -t all -j {job} -o %T").stdout.strip() == "FAILED"
    assert ssh.run(f"sacct -X -n -P -o State -j {job}").stdout.strip() == "FAILED"


@pytest.mark.slurm
def test_scancel_from_an_ssh_session(ssh: Ssh, slurm: Slurm) -> None:
    job = ssh.run("sbatch --parsable -o /dev/null --wrap 'sleep 300'").stdout.strip()
    assert job.isdigit(), job
    slurm.jobs.append(job)
    wait_for("the job to run", lambda: slurm.squeue_state(job) == "RUNNING" or None)
    ssh.run(f"scancel {job}")
    assert slurm.finished(job)[job][0] == "CANCELLED"


@pytest.mark.slow
def test_link_down_and_up(ssh: Ssh, services: Services) -> None:
    services.helper("netns-link.sh", "down")
    try:
        proc = ssh.run("true", "-o", "ConnectTimeout=1", code=255)
        assert "timed out" in proc.stderr or "unreachable" in proc.stderr, proc.stderr
    finally:
        services.helper("netns-link.sh", "up")
    wait_for("the SSH host again", lambda: ssh.run("true", code=None).returncode == 0 or None)


def test_sshd_restart(ssh: Ssh, services: Services) -> None:
    pid_file = Path(services.env["TEST_SERVICES_DIR"]) / "run" / "sshd.pid"
    before = pid_file.read_text()
    services.helper("sshd.sh", "restart")
    assert pid_file.read_text() != before
    ssh.run("true")
