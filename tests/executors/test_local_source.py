"""The local executor and OPEN-WHEEL's ``sourceScript``: sourced in the task's directory before
the script; a file outside the task's directory is never read."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sharin.engine import TaskSpec
from sharin.errors import ExecutorError
from sharin.executors import LocalExecutor


def spec(tmp_path: Path, body: str, source: str | None) -> TaskSpec:
    workdir = tmp_path / "task"
    workdir.mkdir(exist_ok=True)
    (workdir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    return TaskSpec(
        key="t",
        name="t",
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"]},
        log_dir=tmp_path / "logs",
        source_script=source,
    )


async def run_once(s: TaskSpec) -> int | None:
    ex = LocalExecutor()
    handle = await ex.submit(s)
    return (await ex.wait(handle, s)).returncode


def test_the_source_script_sets_up_the_scripts_environment(tmp_path: Path) -> None:
    s = spec(tmp_path, 'echo "$TOOL" > got; exit 4', "setup.sh")
    (s.workdir / "setup.sh").write_text("TOOL=loaded; export TOOL\n")

    assert asyncio.run(run_once(s)) == 4
    assert (s.workdir / "got").read_text() == "loaded\n"
    assert s.rc_path.read_text().strip() == "4"


def test_an_exit_in_the_source_script_still_leaves_the_exit_code(tmp_path: Path) -> None:
    s = spec(tmp_path, "touch ran", "setup.sh")
    (s.workdir / "setup.sh").write_text("exit 9\n")

    assert asyncio.run(run_once(s)) == 9
    assert s.rc_path.read_text().strip() == "9"
    assert not (s.workdir / "ran").exists()


@pytest.mark.parametrize("name", ["../outside.sh", "/etc/profile", "missing.sh"])
def test_a_source_script_outside_the_task_or_missing_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "outside.sh").write_text("touch sourced\n")
    s = spec(tmp_path, "touch ran", name)

    with pytest.raises(ExecutorError, match="sourceScript"):
        asyncio.run(run_once(s))
    assert not (s.workdir / "ran").exists()
    assert not (tmp_path / "sourced").exists()
