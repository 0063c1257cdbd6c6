"""A WHEEL user's ``remotehost.json`` works unchanged: OPEN-WHEEL's and WHEEL 2022's files, as
WHEEL wrote them (``tests/data/wheel-hosts``), read from ``~/.wheel`` or from sharin's
configuration directory, and a Slurm job run over SSH through an entry of each form."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import sharin
from sharin.model import Project, load_hosts

from ..conftest import Cli
from ..services.available import service_env

DATA = Path(__file__).resolve().parents[1] / "data" / "wheel-hosts"
FILES = {
    "open-wheel": DATA / "open-wheel.remotehost.json",
    "wheel-2022": DATA / "wheel-2022.remotehost.json",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of the test's own: no SHARIN_CONFIG_DIR, sharin's directory under
    ``$XDG_CONFIG_HOME`` and WHEEL's ``~/.wheel`` both empty."""
    h = tmp_path / "home"
    (h / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(h / ".config"))
    monkeypatch.delenv("SHARIN_CONFIG_DIR", raising=False)
    monkeypatch.delenv("WHEEL_CONFIG_DIR", raising=False)
    return h


def _place(home: Path, where: str, text: str) -> Path:
    d = home / ".wheel" if where == "wheel" else home / ".config" / "sharin"
    d.mkdir(parents=True, exist_ok=True)
    f = d / "remotehost.json"
    f.write_text(text)
    return f


@pytest.mark.parametrize("where", ["wheel", "sharin"])
@pytest.mark.parametrize("form", sorted(FILES))
def test_wheels_own_remotehost_json_is_read_as_it_is(
    cli: Cli, home: Path, form: str, where: str
) -> None:
    text = FILES[form].read_text()
    f = _place(home, where, text)
    entries = json.loads(text)

    listed = json.loads(cli("host", "list", "--json").output)
    assert [h["name"] for h in listed] == [e["name"] for e in entries]
    hosts = load_hosts()
    for e in entries:
        h = hosts[e["name"]]
        assert (h.host, h.port, h.num_job) == (e["host"], e["port"], e["numJob"])
        assert h.user == e.get("user", e.get("username"))
        assert h.job_scheduler == e["jobScheduler"]
        queue = e.get("queue") or []
        assert list(h.queues) == (queue if isinstance(queue, list) else queue.split(","))
        assert h.status_check_interval == e["statusCheckInterval"]
        assert h.key_file is None  # WHEEL 2022's null, OPEN-WHEEL's absent field
        shown = json.loads(cli("host", "show", e["name"], "--json").output)
        assert {k: shown.get(k) for k in e} == e  # every field as WHEEL wrote it
    assert f.read_text() == text  # reading changes nothing


def _this_host(entry: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``entry`` with the values of this machine's test host (every key kept, none added
    unless given)."""
    out = dict(entry)
    out.update(values)
    return out


def _run_one_job(project: Project, name: str) -> Path:
    sharin.add_task(
        project,
        "wheeljob",
        'echo "$SLURM_JOB_ID" > made.txt',
        host=name,
        useJobScheduler=True,
        outputFiles=[{"name": "made.txt", "dst": []}],
    )
    result = sharin.run(project.root)
    assert result.state == "finished", result.failed
    made = project.root / "wheeljob" / "made.txt"
    assert made.read_text().strip().isdigit()
    return made


@pytest.mark.sshd
@pytest.mark.slurm
@pytest.mark.slow
def test_an_open_wheel_entry_in_dot_wheel_runs_a_slurm_job_over_ssh(
    project: Project, home: Path
) -> None:
    """OPEN-WHEEL's form: ``user``, a list ``queue``, no ``path`` (the job runs under the login
    directory, as in WHEEL) and no ``keyFile``: the key and the address come from
    ``~/.ssh/config``, the host key from ``~/.ssh/known_hosts``."""
    env = service_env()
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    shutil.copy(env["TEST_SSH_KNOWN_HOSTS"], ssh / "known_hosts")
    (ssh / "config").write_text(
        f"Host wheel_release_test_server\n  HostName {env['TEST_SSH_HOST']}\n"
        f"  IdentityFile {env['TEST_SSH_KEY']}\n"
    )
    entries = json.loads(FILES["open-wheel"].read_text())
    entry = next(e for e in entries if e["name"] == "wheel_release_test_server")
    assert "path" not in entry and "keyFile" not in entry
    entry = _this_host(
        entry,
        port=int(env["TEST_SSH_PORT"]),
        user=env["TEST_SSH_USER"],
        jobScheduler="SLURM",
        queue=["debug"],
        statusCheckInterval=1,
    )
    _place(home, "wheel", json.dumps([entry], indent=4))
    made = _run_one_job(project, entry["name"])
    # the job ran in <login directory>/<run start time>/wheeljob, and left it there
    user_home = Path(f"{env['TEST_SERVICES_DIR']}/home/{env['TEST_SSH_USER']}")
    job = made.read_text().strip()
    found = [
        d
        for d in user_home.glob("2*/wheeljob")
        if (d / "made.txt").is_file() and (d / "made.txt").read_text().strip() == job
    ]
    try:
        assert len(found) == 1, sorted(str(d) for d in user_home.glob("2*"))
    finally:
        for d in found:
            shutil.rmtree(d.parent, ignore_errors=True)


@pytest.mark.sshd
@pytest.mark.slurm
@pytest.mark.slow
def test_a_wheel_2022_entry_in_sharins_directory_runs_a_slurm_job_over_ssh(
    project: Project, home: Path, tmp_path: Path
) -> None:
    """WHEEL 2022's form: ``username``, ``keyFile``, a comma-separated ``queue``, ``path``, and
    the fields of its cloud hosts, kept as they are."""
    env = service_env()
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    shutil.copy(env["TEST_SSH_KNOWN_HOSTS"], ssh / "known_hosts")
    jobs = Path(env["TEST_SERVICES_DIR"]) / "home" / env["TEST_SSH_USER"] / f"w22-{tmp_path.name}"
    entries = json.loads(FILES["wheel-2022"].read_text())
    entry = _this_host(
        entries[1],
        host=env["TEST_SSH_HOST"],
        port=int(env["TEST_SSH_PORT"]),
        username=env["TEST_SSH_USER"],
        keyFile=env["TEST_SSH_KEY"],
        path=str(jobs),
        jobScheduler="SLURM",
        queue="debug,long",
        statusCheckInterval=1,
    )
    _place(home, "sharin", json.dumps([entries[0], entry], indent=2))
    try:
        _run_one_job(project, entry["name"])
        assert list(jobs.glob("*/wheeljob/made.txt"))
    finally:
        subprocess.run(["rm", "-rf", "--", str(jobs)], check=False)
