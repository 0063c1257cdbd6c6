"""Exit-code files: tasks that exit with the same code share one file (hard links)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path

from sharin.engine import JobResult, TaskSpec
from sharin.executors import LocalExecutor
from sharin.executors._supervisor import _SPARES


def _spec(tmp_path: Path, name: str, code: int) -> TaskSpec:
    workdir = tmp_path / name
    workdir.mkdir()
    (workdir / "run.sh").write_text(f"#!/bin/sh\nexit {code}\n")
    return TaskSpec(
        key=name,
        name=name,
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"]},
        log_dir=tmp_path / "logs",
    )


def test_equal_exit_codes_are_links_to_one_file_and_each_reads_right(tmp_path: Path) -> None:
    specs = [_spec(tmp_path, f"t{i}", code) for i, code in enumerate([0, 0, 3, 0, 3])]

    async def go() -> tuple[list[JobResult], float]:
        ex = LocalExecutor()
        results = []
        times: list[float] = []
        for i, spec in enumerate(specs):
            if i == 3:
                # the first file with code 0 loses its name to another file: the next link
                # still reaches the file the supervisor wrote, not whatever has the name now
                specs[0].rc_path.unlink()
                specs[0].rc_path.write_text("9\n")
                await asyncio.sleep(0.3)
                times.append(time.time())
            results.append(await ex.wait(await ex.submit(spec), spec))
        await ex.close()
        return results, times[0]

    results, before_t3 = asyncio.run(asyncio.wait_for(go(), 30))
    assert [r.returncode for r in results] == [0, 0, 3, 0, 3]
    texts = [s.rc_path.read_text() for s in specs]
    assert texts == ["9\n", "0\n", "3\n", "0\n", "3\n"]
    ino = [s.rc_path.stat().st_ino for s in specs]
    assert ino[1] == ino[3] and ino[2] == ino[4]  # one file each for code 0 and code 3
    assert len({ino[0], ino[1], ino[2]}) == 3
    # the shared file's time is that of the last task that ended with its code
    assert specs[1].rc_path.stat().st_mtime >= before_t3 - 0.05
    assert sorted(p.name for p in (tmp_path / "logs").glob("*.rc")) == [
        f"t{i}.1.rc" for i in range(5)
    ]


def test_spare_files_made_ahead_become_logs_and_records_and_go_at_the_end(
    tmp_path: Path,
) -> None:
    first = _spec(tmp_path, "a", 0)
    (first.workdir / "run.sh").write_text("#!/bin/sh\necho one\n")
    logs = tmp_path / "logs"

    async def go() -> tuple[set[int], list[int], int]:
        ex = LocalExecutor()
        await ex.wait(await ex.submit(first), first)
        # made while the supervisor waits for the next request
        for _ in range(200):
            if len(list(logs.glob(".spare-*"))) >= _SPARES:
                break
            await asyncio.sleep(0.01)
        spares = {p.stat().st_ino for p in logs.glob(".spare-*")}
        again = dataclasses.replace(first, attempt=2)
        (first.workdir / "run.sh").write_text("#!/bin/sh\necho two; echo err >&2\n")
        second = _spec(tmp_path, "b", 0)
        for spec in (again, second):
            await ex.wait(await ex.submit(spec), spec)
        # the first files made after that are the next task's logs: from the spares
        inodes = [second.stdout_path.stat().st_ino, second.stderr_path.stat().st_ino]
        assert ex._sup is not None
        pid = ex._sup.pid
        await ex.close()
        return spares, inodes, pid

    spares, inodes, pid = asyncio.run(asyncio.wait_for(go(), 30))
    assert len(spares) == _SPARES and set(inodes) <= spares
    # a retry appends to the task's log: the existing file is kept, not replaced by a spare
    assert first.stdout_path.read_text() == "one\ntwo\n"
    assert first.stderr_path.read_text() == "err\n"
    assert not any(logs.glob(f".spare-{pid}-*"))  # the supervisor removed what it did not use
