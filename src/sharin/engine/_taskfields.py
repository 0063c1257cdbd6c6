"""OPEN-WHEEL 2025's task fields, with WHEEL's semantics (``server/app/core`` on its ``dev2025``
branch):

* ``checker`` (``executerManager.js`` ``runChecker``): a script in the task's directory run
  after the task ended, whatever its exit code; its exit code decides: 0 finished, anything
  else failed. sharin also gives it ``WHEEL_TASK_RT``, the task's exit code (WHEEL does not).
* ``WHEEL_TASK_RT`` (and ``wheelTaskRT``) for ``retryCondition``: the checker's exit code when
  a checker ran, else the task's (``needsRetry``).
* ``mandatory`` on an input file (``dispatcher.js`` ``_checkMandatoryInputFilesExist``): when
  the file is not there once inputs were delivered, the component fails without running.
* ``sourceScript`` (``source(task)``): a file sourced before the script, e.g. for
  ``module load`` (see the local executor).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ..errors import RunError
from ..model import Component

__all__ = ["check_mandatory_inputs", "component_file", "rt_env", "run_checker"]


def component_file(c: Component, key: str, directory: Path) -> str | None:
    """The file named by field ``key`` (``checker``, ``sourceScript``) of a task, checked to be
    a file inside ``directory`` (the task's directory in this run); None when it is not set."""
    value = c.data.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RunError(f"{c.rel}: {key} must be the name of a file in the task's directory")
    target = (directory / value).resolve()
    if os.path.isabs(value) or not target.is_relative_to(directory.resolve()):
        raise RunError(
            f"{c.rel}: {key} {value!r} is outside the task's directory; "
            "put the file in the task's directory and name it relative to it"
        )
    if not target.is_file():
        raise RunError(
            f"{c.rel}: {key} {value!r} does not exist in {directory}; create it or clear {key}"
        )
    return value


def rt_env(rc: int | None) -> dict[str, str]:
    """``WHEEL_TASK_RT`` and its old spelling ``wheelTaskRT``."""
    text = "" if rc is None else str(rc)
    return {"WHEEL_TASK_RT": text, "wheelTaskRT": text}


async def run_checker(
    checker: str, directory: Path, env: Mapping[str, str], out: Path, err: Path
) -> int:
    """Run ``./checker`` in ``directory``; its output goes to the task's logs. Its exit code."""
    script = directory / checker
    mode = script.stat().st_mode
    if mode & 0o111 != 0o111:
        script.chmod(mode | 0o111)
    with open(out, "ab") as o, open(err, "ab") as e:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            './"$1"',
            "sh",
            checker,
            cwd=directory,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            start_new_session=True,
        )
        return await proc.wait()


def check_mandatory_inputs(
    c: Component, directory: Path, elsewhere: frozenset[str] = frozenset()
) -> None:
    """Fail a component whose ``mandatory`` input file did not arrive (but those in
    ``elsewhere``, linked where the task runs)."""
    for i, f in enumerate(c.data.get("inputFiles") or []):
        if not isinstance(f, dict) or f.get("mandatory") is not True:
            continue
        name = str(f.get("name") or "")
        if name in elsewhere:
            continue
        target = directory / name if name else directory
        if not target.exists():
            raise RunError(
                f"{c.rel}: mandatory input file {name!r} (inputFiles[{i}]) is not in {directory} "
                "after delivery; connect a component that makes it, or clear its mandatory flag"
            )
