"""Building a project of N tasks through the Python API (default 10,000), in ``Project.batch()``.

    python benchmarks/build.py [--tasks N] [--repeat R] [--workdir DIR] [--fan-in]

sharin: ``sharin.new_project``, then N × ``sharin.add_task(p, "t<i>", "true")`` inside one
``with p.batch():`` (each task's directory, its ``cmp.wheel.json`` and ``run.sh``, every name
checked, the project's files written once at the end and the new files staged in git, as
WHEEL stages a new component).

The floor, in the same run and alternated with it: the same N directories with the same two
files written by plain Python (``mkdir``, the JSON text sharin wrote for the first task with
its name and ID changed, ``run.sh`` made executable), then one ``git add -A`` of the whole
project. What sharin costs beyond it: the checks of every name and property, the atomic writes
(a temporary file and a rename), the component objects and the project's own files.

With ``--fan-in``, one more task ``gather`` and a flow edge from each task into it
(``sharin.connect``), as W1 of ``benchmarks/run.py`` is built; the floor writes the edges into
the files it writes (each task's ``next``, the gather's ``previous``) in the same pass.

Reported: wall and CPU time (this process's, and git's as its children's), the median of R
(default 3). Target: 10,000 tasks ≤ 2× the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sharin


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def build_sharin(where: Path, n: int, fan_in: bool) -> tuple[float, float, Path]:
    t, c = time.perf_counter(), _cpu()
    p = sharin.new_project(where / "s")
    with p.batch():
        gather = sharin.add_task(p, "gather", "true") if fan_in else None
        for i in range(n):
            task = sharin.add_task(p, f"t{i}", "true")
            if gather is not None:
                sharin.connect(p, task, gather)
    return time.perf_counter() - t, _cpu() - c, p.root


def build_floor(
    where: Path, n: int, sample: dict[str, object], fan_in: bool
) -> tuple[float, float]:
    t, c = time.perf_counter(), _cpu()
    root = where / "f.wheel"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "prj.wheel.json").write_text(json.dumps({"name": "f"}, indent=2) + "\n")
    gather_id = str(uuid.uuid1())
    ids = []

    def write(name: str, data: dict[str, object]) -> None:
        d = root / name
        d.mkdir()
        (d / "cmp.wheel.json").write_text(json.dumps(data, indent=2) + "\n")
        script = d / "run.sh"
        script.write_text("true\n")
        os.chmod(script, 0o755)

    for i in range(n):
        ids.append(str(uuid.uuid1()))
        edges = {"next": [gather_id]} if fan_in else {}
        write(f"t{i}", {**sample, "name": f"t{i}", "ID": ids[-1], **edges})
    if fan_in:
        write("gather", {**sample, "name": "gather", "ID": gather_id, "previous": ids})
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return time.perf_counter() - t, _cpu() - c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="scratch directory (default: a tmp dir)")
    ap.add_argument("--fan-in", action="store_true", help="and a flow edge from each to one task")
    a = ap.parse_args()

    ours: list[tuple[float, float]] = []
    floor: list[tuple[float, float]] = []
    for _ in range(a.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="sharin-build-", dir=a.workdir))
        try:
            wall, cpu, root = build_sharin(tmp, a.tasks, a.fan_in)
            ours.append((wall, cpu))
            sample = json.loads((root / "t0" / "cmp.wheel.json").read_text())
            sample.pop("next", None)
            floor.append(build_floor(tmp, a.tasks, sample, a.fan_in))
        finally:
            shutil.rmtree(tmp)

    med = statistics.median
    w, c = med(x[0] for x in ours), med(x[1] for x in ours)
    fw, fc = med(x[0] for x in floor), med(x[1] for x in floor)
    fan = " --fan-in" if a.fan_in else ""
    print(f"\n`python benchmarks/build.py --tasks {a.tasks} --repeat {a.repeat}{fan}`\n")
    what = f"{a.tasks} tasks" + (" + a flow edge each into one" if a.fan_in else "")
    print(f"| {what} built (median of {a.repeat}) | sharin | floor | ratio |")
    print("|---|---|---|---|")
    print(f"| wall | {w:.2f} s | {fw:.2f} s | {w / fw:.1f}× |")
    print(f"| CPU (with git's) | {c:.2f} s | {fc:.2f} s | {c / fc:.1f}× |")
    print(f"\ntarget: ≤ 2× the floor's wall {'PASS' if w <= 2 * fw else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
