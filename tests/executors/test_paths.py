"""Executors and the transport refuse, before touching anything, a script or a file that leads
out of the project (the engine's last checks, whatever a project file says)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sharin.engine import TaskSpec
from sharin.errors import ExecutorError
from sharin.executors import LocalExecutor, LocalTransport


def _spec(root: Path, script: str) -> TaskSpec:
    workdir = root / "t"
    workdir.mkdir(parents=True, exist_ok=True)
    return TaskSpec(
        key="t",
        name="t",
        workdir=workdir,
        script=script,
        env={"PATH": os.environ["PATH"]},
        log_dir=root / ".sharin",
        project_root=root,
    )


@pytest.mark.parametrize(
    "script", ["../../outside.sh", "ABS", "link.sh", "sub/../../../outside.sh"]
)
def test_local_executor_refuses_a_script_outside(tmp_path: Path, script: str) -> None:
    outside = tmp_path / "outside.sh"
    outside.write_bytes(b"#!/bin/sh\r\ntouch PWNED\r\n")
    outside.chmod(0o644)
    root = tmp_path / "p.wheel"
    spec = _spec(root, str(outside) if script == "ABS" else script)
    (spec.workdir / "link.sh").symlink_to(outside)
    with pytest.raises(ExecutorError, match="the script was not run"):
        asyncio.run(LocalExecutor().submit(spec))
    assert outside.read_bytes() == b"#!/bin/sh\r\ntouch PWNED\r\n"
    assert os.stat(outside).st_mode & 0o777 == 0o644
    assert not list(tmp_path.rglob("PWNED"))


def test_get_does_not_write_through_a_link_out_of_the_project(tmp_path: Path) -> None:
    remote = tmp_path / "host" / "job"
    (remote / "sub").mkdir(parents=True)
    (remote / "sub" / "out.txt").write_text("result")
    root = tmp_path / "p.wheel"
    (root / "t").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "t" / "sub").symlink_to(elsewhere)
    with pytest.raises(ExecutorError, match="outside the project"):
        asyncio.run(LocalTransport().get(str(remote), ["sub/out.txt"], root / "t"))
    assert os.listdir(elsewhere) == []


def test_get_does_not_read_through_a_link_out_of_the_job_directory(tmp_path: Path) -> None:
    remote = tmp_path / "host" / "job"
    remote.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (remote / "out.txt").symlink_to(secret)
    root = tmp_path / "p.wheel"
    (root / "t").mkdir(parents=True)
    refused: list[str] = []
    asyncio.run(LocalTransport().get(str(remote), ["out.txt"], root / "t", refused=refused))
    assert not os.path.lexists(root / "t" / "out.txt")
    [warning] = refused  # refused, with a warning for the task's log
    assert "'out.txt' is a symbolic link" in warning and "not copied back" in warning


def test_put_dir_does_not_send_files_linked_from_outside(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    spec = _spec(root, "run.sh")
    (root / "prj.wheel.json").write_text("{}")
    (spec.workdir / "run.sh").write_text("#!/bin/sh\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (spec.workdir / "in.txt").symlink_to(secret)
    remote = tmp_path / "host" / "job"
    with pytest.raises(ExecutorError, match="not sent to the host"):
        asyncio.run(LocalTransport().put_dir(spec.workdir, str(remote)))
    assert not (remote / "in.txt").exists()
    # a link inside the project is sent as its content
    (spec.workdir / "in.txt").unlink()
    (root / "data.txt").write_text("data")
    (spec.workdir / "in.txt").symlink_to("../data.txt")
    asyncio.run(LocalTransport().put_dir(spec.workdir, str(remote)))
    assert (remote / "in.txt").read_text() == "data"
