"""W5: a parameter study of N trivial instances (default 10,000).

    python benchmarks/paramstudy.py [--instances N] [--jobs J] [--repeat R]

Builds a project with one ``parameterStudy`` (a range axis 1..N, one target file rendered per
instance, one gather rule) holding one task (``cat input.txt > out.txt``), then runs it in a fresh
engine process and prints the wall time, the time from the start of the run to the first
instance's task running, the engine's peak RSS (``ru_maxrss`` of the engine process alone), its
CPU time and that of the task processes. Targets: ≤ 15 s and ≤ 100 MB for 10,000 instances.

Every run's copy is kept until all runs are done: deleting 100,000 files just before the next run
would slow that run down (ext4 without a journal skips recently deleted inodes when it allocates
new ones, and each file an instance makes then costs much more system time). For the same
reason the report gives what creating one file costs in the scratch directory just before the
runs (``file creation probe``): a figure far above ~50 µs means the file system is still busy
with files deleted in the last minutes (by this machine's other jobs), and the run is slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import sharin
from sharin.engine import RunOptions

first = []
t0 = time.monotonic()

def on_event(ev):
    if not first and ev.kind == "task" and ev.state == "running":
        first.append(time.monotonic() - t0)

result = sharin.run(sys.argv[1], options=RunOptions(max_local=int(sys.argv[2])), on_event=on_event)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "ok": result.ok, "state": result.state, "counts": result.counts, "wall": wall,
    "first": first[0] if first else None, "rss_mb": ru.ru_maxrss / 1024,
    "cpu": ru.ru_utime + ru.ru_stime, "cpu_user": ru.ru_utime, "cpu_sys": ru.ru_stime,
    "cpu_tasks": kids.ru_utime + kids.ru_stime,
}))
"""


def build(root: Path, n: int) -> Path:
    import sharin

    p = sharin.new_project(root / "ps10k")
    ps = sharin.add_component(p, "parameterStudy", "ps")
    task = sharin.add_task(p, "calc", "cat input.txt > out.txt", parent=ps)
    (task.directory / "input.txt").write_text("value={{ N }}\n")
    setting = {
        "version": 2,
        "targetFiles": [{"targetNode": task.id, "targetName": "input.txt"}],
        "params": [{"keyword": "N", "min": 1, "max": n, "step": 1}],
        "scatter": [],
        "gather": [{"srcName": "out.txt", "srcNode": task.id, "dstName": "results/{{ N }}.txt"}],
    }
    (ps.directory / "parameterSetting.json").write_text(json.dumps(setting))
    sharin.save(p, "benchmark project")
    return p.root


def creation_probe(where: Path, n: int = 300) -> float:
    """Microseconds to create one empty file in a new directory below ``where`` (median of
    ``n``)."""
    probe = where / "probe"
    probe.mkdir()
    times = []
    for i in range(n):
        t = time.perf_counter()
        os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharin-ps-bench-"))
    try:
        t = time.monotonic()
        template = build(work / "template", args.instances)
        build_s = time.monotonic() - t
        probe_us = creation_probe(work)
        runs = []
        for i in range(args.repeat):
            copy = work / f"run{i}" / template.name
            shutil.copytree(template, copy, symlinks=True)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(copy), str(args.jobs)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            gathered = len(list((copy / "ps" / "results").iterdir()))
            if not r["ok"] or gathered != args.instances:
                print(f"run failed: {r} ({gathered} results gathered)", file=sys.stderr)
                return 1
            runs.append(r)

        def med(key: str) -> float:
            return statistics.median(float(r[key]) for r in runs)

        cmd = "python benchmarks/paramstudy.py " + " ".join(sys.argv[1:])
        print(
            f"`{cmd}` — {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{args.repeat} run(s), -j {args.jobs}"
        )
        print()
        print("| W5: parameter study | sharin (median) | target |")
        print("|---|---:|---:|")
        print(f"| instances | {args.instances:,} | 10,000 |")
        print(f"| wall time of the run | {med('wall'):.2f} s | ≤ 15 s |")
        print(f"| start to first instance running | {med('first') * 1000:.0f} ms | |")
        print(f"| engine peak RSS | {med('rss_mb'):.1f} MB | ≤ 100 MB |")
        print(
            f"| engine CPU time (user + system) | {med('cpu'):.2f} s "
            f"({med('cpu_user'):.2f} + {med('cpu_sys'):.2f}) | |"
        )
        print(f"| CPU time of the task processes | {med('cpu_tasks'):.2f} s | |")
        print(f"| building the project (API, not timed above) | {build_s:.2f} s | |")
        print(f"| file creation probe (before the runs) | {probe_us:.0f} µs | |")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
