"""File edges between tasks on hosts reached over SSH, run as Slurm jobs against the real sshd
and Slurm of ``scripts/services``: through this machine between hosts that do not share files,
linked on the host (no byte of the file over the connection) between tasks on the same host or
one naming the other as its ``sharedHost``; ``cleanupFlag``; and what stage-out refuses.

The test host shares this machine's file system, so its working directories are looked at here
directly.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import sharin
from sharin.executors._ssh import POOL
from sharin.model import HostConfig, Project

from ..services.available import service_env

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]

#: the same sshd under another address (glibc reads ``10.200.2`` as 10.200.0.2): a host that
#: is not the same by label, address, user and port
OTHER_ADDRESS = "10.200.2"
BIG = 4 << 20


@pytest.fixture
def jobs_root(tmp_path: Path) -> Iterator[Path]:
    """A directory of this test's own below the test user's home (removed afterwards)."""
    home = Path(pwd.getpwnam(service_env()["TEST_SSH_USER"]).pw_dir)
    root = home / "sx" / f"{tmp_path.name}-{secrets.token_hex(4)}"
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _hosts(config_dir: Path, tmp_path: Path, root: Path, **second: Any) -> dict[str, HostConfig]:
    env = service_env()
    assert env["TEST_SSH_HOST"] == "10.200.0.2"
    known = tmp_path / "known_hosts"
    lines = Path(env["TEST_SSH_KNOWN_HOSTS"]).read_text().splitlines()
    known.write_text(
        "\n".join([*lines, *(f"{OTHER_ADDRESS} {line.split(' ', 1)[1]}" for line in lines if line)])
        + "\n"
    )
    base = {
        "port": int(env["TEST_SSH_PORT"]),
        "username": env["TEST_SSH_USER"],
        "keyFile": env["TEST_SSH_KEY"],
        "knownHostsFile": str(known),
        "jobScheduler": "SLURM",
        "statusCheckInterval": 0.5,
    }
    entries = [
        {
            **base,
            "name": "hpc-a",
            "host": env["TEST_SSH_HOST"],
            "path": f"{root}/a",
        },
        {
            **base,
            "name": "hpc-b",
            "host": OTHER_ADDRESS,
            "path": f"{root}/b",
            **second,
        },
    ]
    (config_dir / "remotehost.json").write_text(json.dumps(entries))
    return {e["name"]: HostConfig.from_json(e) for e in entries}


def _task(p: Project, name: str, text: str, host: str, outputs: Sequence[str] = ()) -> None:
    sharin.add_task(p.root, name, text, host=host, outputs=outputs)
    sharin.set_property(p.root, name, "useJobScheduler", True)


def _traffic(hosts: dict[str, HostConfig]) -> int:
    return sum(sum(POOL.traffic(h)) for h in hosts.values())


def _job_dirs(hosts: dict[str, HostConfig], name: str) -> list[Path]:
    """The working directories of the task ``name`` on the hosts (one per run)."""
    return sorted(d for h in hosts.values() for d in Path(h.path).glob(f"*/{name}") if d.is_dir())


def _producer_and_consumer(p: Project, host_a: str, host_b: str) -> None:
    _task(
        p,
        "make",
        f"head -c {BIG} /dev/urandom > big.dat; mkdir -p res; echo one > res/a.dat; "
        "echo two > res/b.dat",
        host_a,
        ["big.dat", "res/*.dat"],
    )
    _task(
        p,
        "use",
        "md5sum < in.dat | cut -d' ' -f1 > sum.txt; cat inputs/res/a.dat inputs/res/b.dat > "
        "both.txt",
        host_b,
        ["sum.txt", "both.txt"],
    )
    sharin.connect_files(p.root, "make", "big.dat", "use", "in.dat")
    sharin.connect_files(p.root, "make", "res/*.dat", "use", "inputs/")


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def test_between_hosts_that_share_nothing_a_file_comes_here_and_goes_there(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path
) -> None:
    hosts = _hosts(config_dir, tmp_path, jobs_root)
    _producer_and_consumer(project, "hpc-a", "hpc-b")
    assert sharin.validate(sharin.open_project(project.root)) == []
    before = _traffic(hosts)

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    big = project.root / "make" / "big.dat"
    assert big.is_file() and big.stat().st_size == BIG  # came back to its component
    assert (project.root / "use" / "sum.txt").read_text().strip() == _md5(big)
    assert (project.root / "use" / "both.txt").read_text() == "one\ntwo\n"
    # there and back: the file crossed the connection twice
    assert _traffic(hosts) - before > 2 * BIG
    [used] = _job_dirs(hosts, "use")
    assert not (used / "in.dat").is_symlink() and (used / "in.dat").stat().st_size == BIG


@pytest.mark.parametrize("second", [{}, {"sharedHost": "hpc-a"}], ids=["same", "shared"])
def test_on_the_same_host_a_file_is_linked_there_and_never_crosses(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path, second: dict[str, str]
) -> None:
    hosts = _hosts(config_dir, tmp_path, jobs_root, **second)
    _producer_and_consumer(project, "hpc-a", "hpc-b" if second else "hpc-a")
    # the linked input stays there, even asked for: it leads to the producer's directory
    sharin.set_property(project.root, "use", "include", ["in.dat"])
    before = _traffic(hosts)

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    moved = _traffic(hosts) - before
    assert moved < BIG // 4, moved  # the scripts and the small results only
    assert not (project.root / "make" / "big.dat").exists()  # left where its consumer is
    [made] = _job_dirs(hosts, "make")
    [used] = _job_dirs(hosts, "use")
    link = used / "in.dat"
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    assert link.resolve() == (made / "big.dat").resolve()
    assert (used / "inputs" / "res" / "a.dat").is_symlink()
    assert (project.root / "use" / "sum.txt").read_text().strip() == _md5(made / "big.dat")
    assert (project.root / "use" / "both.txt").read_text() == "one\ntwo\n"
    assert not (project.root / "use" / "in.dat").exists()
    log = "".join(p.read_text() for p in (project.root / ".sharin").rglob("*.out"))
    assert "warning" not in log, log

    # a second run: nothing changed, nothing runs (the output left there is not "missing")
    again = sharin.run(project.root)
    assert again.state == "finished" and again.nothing_to_do, again.reasons
    # the consumer changed alone: it links from where the producer ran before
    (project.root / "use" / "run.sh").write_text(
        "#!/bin/sh\nwc -c < in.dat | tr -d ' ' > sum.txt; cat inputs/res/*.dat > both.txt\n"
    )
    third = sharin.run(project.root)
    assert third.state == "finished", third.failed
    assert "make" not in third.reasons, third.reasons
    assert (project.root / "use" / "sum.txt").read_text().strip() == str(BIG)


def test_a_producer_that_removes_its_directory_hands_its_file_over_through_here(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path
) -> None:
    hosts = _hosts(config_dir, tmp_path, jobs_root)
    _producer_and_consumer(project, "hpc-a", "hpc-a")
    sharin.set_property(project.root, "make", "cleanupFlag", "0")

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    big = project.root / "make" / "big.dat"
    assert big.stat().st_size == BIG  # came back: its directory there is gone
    assert _job_dirs(hosts, "make") == []
    [used] = _job_dirs(hosts, "use")  # 2 at the top keeps it
    assert not (used / "in.dat").is_symlink()
    assert (project.root / "use" / "sum.txt").read_text().strip() == _md5(big)


def test_cleanup_flag_is_inherited_through_a_workflow(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path
) -> None:
    hosts = _hosts(config_dir, tmp_path, jobs_root)
    sharin.add_component(project.root, "workflow", "wf", cleanupFlag=0)
    sharin.add_component(project.root, "workflow", "inner", parent="wf", cleanupFlag=2)
    for name, parent, flag in (
        ("gone", "wf/inner", 2),
        ("kept", "wf/inner", 1),
        ("top", None, 2),
    ):
        sharin.add_task(
            project.root, name, "echo x > x.txt", parent=parent, host="hpc-a", outputs=["x.txt"]
        )
        rel = f"{parent}/{name}" if parent else name
        sharin.set_property(project.root, rel, "useJobScheduler", True)
        sharin.set_property(project.root, rel, "cleanupFlag", flag)

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    root = Path(hosts["hpc-a"].path)
    [run_dir] = list(root.iterdir())
    assert not (run_dir / "wf" / "inner" / "gone").exists()
    assert (run_dir / "wf" / "inner" / "kept" / "x.txt").is_file()
    assert (run_dir / "top" / "x.txt").is_file()
    for rel in ("wf/inner/gone", "wf/inner/kept", "top"):
        assert (project.root / rel / "x.txt").read_text() == "x\n"  # stage-out came first


def test_stage_out_refuses_links_leading_out_of_the_task_and_keeps_those_inside(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path
) -> None:
    _hosts(config_dir, tmp_path, jobs_root)
    (project.root.parent / "x").write_text("outside the project\n")
    _task(
        project,
        "t",
        "echo data > data.txt; ln -s /etc/passwd leak; ln -s ../../x up; ln -s data.txt inner",
        "hpc-a",
        ["leak", "up", "inner", "data.txt"],
    )

    result = sharin.run(project.root)

    assert result.state == "finished", result.failed
    tdir = project.root / "t"
    assert not (tdir / "leak").exists() and not (tdir / "leak").is_symlink()
    assert not (tdir / "up").exists() and not (tdir / "up").is_symlink()
    assert os.readlink(tdir / "inner") == "data.txt"
    assert (tdir / "inner").read_text() == "data\n"
    log = "".join(p.read_text() for p in (project.root / ".sharin").rglob("*.out"))
    assert "'leak' is a symbolic link to '/etc/passwd'" in log
    assert "'up' is a symbolic link to '../../x'" in log


def test_a_stage_out_that_fails_changes_no_file_here(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path
) -> None:
    _hosts(config_dir, tmp_path, jobs_root)
    _task(
        project,
        "t",
        "echo new > keep.txt; rm -rf clash; echo file > clash",
        "hpc-a",
        ["keep.txt", "clash"],
    )
    (project.root / "t" / "keep.txt").write_text("old\n")
    (project.root / "t" / "clash").mkdir()  # a directory where the host has a file

    result = sharin.run(project.root)

    assert result.state == "failed"
    assert "clash" in " ".join(result.failed) and "directory" in " ".join(result.failed)
    assert (project.root / "t" / "keep.txt").read_text() == "old\n"
    assert not [p for p in (project.root / "t").iterdir() if p.name.startswith(".")]


@pytest.mark.slow  # four jobs one after another
def test_in_each_trip_of_a_loop_the_file_is_linked_from_that_trips_producer(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path
) -> None:
    hosts = _hosts(config_dir, tmp_path, jobs_root)
    root = project.root
    sharin.add_component(root, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(
        root,
        "make",
        'echo "trip $WHEEL_CURRENT_INDEX" > out.txt',
        parent="loop",
        host="hpc-a",
        outputs=["out.txt"],
        useJobScheduler=True,
    )
    sharin.add_task(
        root,
        "use",
        "cat in.txt > got.txt",
        parent="loop",
        host="hpc-a",
        outputs=["got.txt"],
        useJobScheduler=True,
    )
    sharin.connect_files(root, "loop/make", "out.txt", "loop/use", "in.txt")

    result = sharin.run(root)

    assert result.state == "finished", result.failed
    [run_dir] = list(Path(hosts["hpc-a"].path).iterdir())
    for i in (0, 1):
        link = run_dir / f"loop_{i}" / "use" / "in.txt"
        assert link.is_symlink(), sorted(str(p) for p in run_dir.rglob("*"))
        assert link.resolve() == (run_dir / f"loop_{i}" / "make" / "out.txt").resolve()
        assert (run_dir / f"loop_{i}" / "use" / "got.txt").read_text() == f"trip {i}\n"
    assert (root / "loop" / "use" / "got.txt").read_text() == "trip 1\n"


@pytest.mark.parametrize("passes", [True, False], ids=["checker-passes", "checker-fails"])
def test_a_task_whose_checker_fails_keeps_its_directory_on_the_host(
    project: Project, config_dir: Path, tmp_path: Path, jobs_root: Path, passes: bool
) -> None:
    hosts = _hosts(config_dir, tmp_path, jobs_root)
    _task(project, "t", "echo made > out.txt", "hpc-a", ["out.txt"])
    check = project.root / "t" / "check.sh"
    check.write_text(f"#!/bin/sh\ngrep -q made out.txt && exit {0 if passes else 1}\n")
    check.chmod(0o755)
    sharin.set_property(project.root, "t", "checker", "check.sh")
    sharin.set_property(project.root, "t", "cleanupFlag", 0)

    result = sharin.run(project.root)

    assert result.state == ("finished" if passes else "failed"), result.failed
    assert (project.root / "t" / "out.txt").read_text() == "made\n"  # the checker read it
    assert bool(_job_dirs(hosts, "t")) != passes
