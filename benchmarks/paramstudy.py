"""W5: a parameter study of N trivial instances (default 10,000).

    python benchmarks/paramstudy.py [--instances N] [--jobs J] [--repeat R] [--no-floor]

Builds a project with one ``parameterStudy`` (a range axis 1..N, one target file rendered per
instance, one gather rule) holding one task (``cat input.txt > out.txt``), then runs it in a fresh
engine process and prints the wall time, the time from the start of the run to the first
instance's task running, the engine's peak RSS (``ru_maxrss`` of the engine process alone), its
CPU time (and that of each of its threads until the study ended, from ``/proc``) and that of
the task processes.

Beside it, in the same run, the shell floor: the same N instance directories made with
``cp -r`` of the template (the study's directory as an instance gets it) and the same rendered
target file written into each, each instance's script run in its directory, and its result
gathered, by ``xargs -P<jobs>`` (each ``sh`` takes a batch of instances; three ``exec``s per
instance, as sharin's: ``cp``, the script's ``sh`` and ``cat``). The runs alternate (sharin,
floor, sharin, ...) so that both see the same state of the machine.

Targets: 10,000 instances ≤ 15 s and ≤ 2× the floor; 100,000 instances with the engine's peak
RSS ≤ 150 MB.

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
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import creation_probe  # noqa: E402

CHILD = r"""
import json, os, resource, sys, threading, time
import sharin
from sharin.engine import RunOptions

first = []
t0 = time.monotonic()

study_rss = []
threads = {}  # the engine's threads' CPU (user, system) when the study ended, by name

def thread_cpu():
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        user, system = threads.get(name, (0.0, 0.0))
        threads[name] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)

def on_event(ev):
    if not first and ev.kind == "task" and ev.state == "running":
        first.append(time.monotonic() - t0)
    if ev.key == "ps" and ev.state == "finished":  # every instance ended and was gathered
        study_rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if os.path.isdir("/proc/self/task"):
            thread_cpu()

result = sharin.run(sys.argv[1], options=RunOptions(max_local=int(sys.argv[2])), on_event=on_event)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "ok": result.ok, "state": result.state, "counts": result.counts, "wall": wall,
    "first": first[0] if first else None, "rss_mb": ru.ru_maxrss / 1024,
    "study_rss_mb": study_rss[0] if study_rss else None,
    "cpu": ru.ru_utime + ru.ru_stime, "cpu_user": ru.ru_utime, "cpu_sys": ru.ru_stime,
    "cpu_tasks": kids.ru_utime + kids.ru_stime, "threads": threads,
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


#: one ``sh`` of the floor makes and runs this many instances, one after another
FLOOR_BATCH = 100

#: the floor's instance: the template copied, the target file rendered, the script run in the
#: task's directory, its result gathered (with shell built-ins: one line)
FLOOR_SCRIPT = r"""
for i; do
    D="$W/ps_N_$i"
    cp -r "$T" "$D" || exit 255
    printf 'value=%s\n' "$i" > "$D/calc/input.txt" || exit 255
    cd "$D/calc" && ./run.sh > /dev/null 2>&1 || exit 255
    IFS= read -r line < out.txt && printf '%s\n' "$line" > "$W/results/$i.txt" || exit 255
done
"""


def run_floor(root: Path, template: Path, n: int, jobs: int) -> dict[str, float]:
    """The shell floor in ``root`` (see the module's docstring): wall and CPU time."""
    root.mkdir(parents=True)
    tdir = root / "template"
    shutil.copytree(template / "ps", tdir, symlinks=True)
    (tdir / "parameterSetting.json").unlink()  # an instance does not get it
    (root / "results").mkdir()
    before = os.times()
    t = time.monotonic()
    out = subprocess.run(
        ["xargs", f"-P{jobs}", "-n", str(FLOOR_BATCH), "sh", "-c", FLOOR_SCRIPT, "sh"],
        input="".join(f"{i}\n" for i in range(1, n + 1)),
        env={**os.environ, "W": str(root), "T": str(tdir)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - t
    after = os.times()
    gathered = len(os.listdir(root / "results"))
    if out.returncode != 0 or gathered != n:
        raise SystemExit(f"the floor failed ({gathered} results): {out.stderr[-2000:]}")
    return {
        "wall": wall,
        "cpu": (after.children_user - before.children_user)
        + (after.children_system - before.children_system),
        "cpu_sys": after.children_system - before.children_system,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-floor", action="store_true", help="run sharin alone")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharin-ps-bench-"))
    try:
        t = time.monotonic()
        template = build(work / "template", args.instances)
        build_s = time.monotonic() - t
        probe_us = creation_probe(work)
        runs = []
        floors: list[dict[str, float]] = []
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
            if not args.no_floor:
                floors.append(run_floor(work / f"floor{i}", template, args.instances, args.jobs))

        def med(key: str) -> float:
            return statistics.median(float(r[key]) for r in runs)

        def fmed(key: str) -> float:
            return statistics.median(f[key] for f in floors) if floors else math.nan

        def show(x: float, unit: str = " s") -> str:
            return "–" if math.isnan(x) else f"{x:.2f}{unit}"

        cmd = "python benchmarks/paramstudy.py " + " ".join(sys.argv[1:])
        print(
            f"`{cmd}` — {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{args.repeat} run(s), -j {args.jobs}"
        )
        print()
        wall, floor_wall = med("wall"), fmed("wall")
        ratio = wall / floor_wall if floors else math.nan
        cpu_all = med("cpu") + med("cpu_tasks")
        print(
            "| W5: parameter study | sharin (median) | `cp -r` + `xargs` floor | ratio | target |"
        )
        print("|---|---:|---:|---:|---:|")
        print(f"| instances | {args.instances:,} | {args.instances:,} | | |")
        print(
            f"| wall time of the run | {wall:.2f} s | {show(floor_wall)} | {show(ratio, '×')} "
            "| ≤ 15 s and ≤ 2× at 10,000 |"
        )
        print(f"| start to first instance running | {med('first') * 1000:.0f} ms | | | |")
        print(f"| engine peak RSS | {med('rss_mb'):.1f} MB | | | ≤ 150 MB at 100,000 |")
        print(
            f"| engine peak RSS until the study ended (before its fingerprint) "
            f"| {med('study_rss_mb'):.1f} MB | | | |"
        )
        print(
            f"| engine CPU time (user + system) | {med('cpu'):.2f} s "
            f"({med('cpu_user'):.2f} + {med('cpu_sys'):.2f}) | | | |"
        )
        print(
            f"| CPU time of the task processes (floor: all its processes; system) "
            f"| {med('cpu_tasks'):.2f} s | {show(fmed('cpu'))} ({show(fmed('cpu_sys'))}) | | |"
        )
        print(
            f"| all CPU time | {cpu_all:.2f} s | {show(fmed('cpu'))} "
            f"| {show(cpu_all / fmed('cpu'), '×')} | |"
        )
        for name in sorted(runs[0].get("threads") or {}):
            cpu = [r["threads"][name] for r in runs if name in (r.get("threads") or {})]
            user = statistics.median(c[0] for c in cpu)
            system = statistics.median(c[1] for c in cpu)
            print(
                f"| · engine thread {name} until the study ended (user + system) "
                f"| {user + system:.2f} s ({user:.2f} + {system:.2f}): "
                f"{(user + system) / args.instances * 1000:.2f} ms per instance | | | |"
            )
        print(f"| building the project (API, not timed above) | {build_s:.2f} s | | | |")
        print(f"| file creation probe (before the runs) | {probe_us:.0f} µs | | | |")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
