"""A task's environment may hold bytes that are not UTF-8 (kept by Python as surrogates)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sharin.engine import JobResult, TaskSpec
from sharin.executors import LocalExecutor


def test_an_environment_value_of_undecodable_bytes_reaches_the_task_unchanged(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "t"
    workdir.mkdir()
    (workdir / "run.sh").write_text('#!/bin/sh\nprintf %s "$ODD" > odd.txt\n')
    odd = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    spec = TaskSpec(
        key="t",
        name="t",
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"], "ODD": odd},
        log_dir=tmp_path / "logs",
    )

    async def go() -> JobResult:
        ex = LocalExecutor()
        try:
            return await ex.wait(await ex.submit(spec), spec)
        finally:
            await ex.close()

    assert asyncio.run(asyncio.wait_for(go(), 15)) == JobResult(0, "")
    assert (workdir / "odd.txt").read_bytes() == b"caf\xe9 \xff"
