"""What each part of a local task's path costs: W1 run with one part replaced at a time.

    python benchmarks/ablate.py [--repeat N] [--only full,no-mirror,...] [--workdir DIR]
                                [--workload W3]

W1 (``run.py``'s 1,000 independent ``true`` tasks and one gather task; with ``--workload W3``,
its 1 → 200 → 1 fan-out and fan-in) is built once through the API; every measurement runs on a
fresh copy, in a fresh engine process (``engine_child.py``, sharin's bytecode cached as in
``run.py``). In each process ONE part of the engine is replaced
by a no-op or the cheapest stand-in, by monkeypatching in that process only (never in ``src/``),
so that the difference to the full engine measured in the same repetitions is what that part
costs. Variants run interleaved (full, variant 1, variant 2, ..., the asyncio floor, full, ...),
so that drifting load hits them all. The report (markdown) goes to stdout.

The variants (what the process does instead):

* ``full`` — nothing replaced.
* ``no-mirror`` — the WHEEL state mirror writes nothing (``StateMirror.set`` does nothing).
* ``no-journal`` — the journal is opened and the run is recorded, but no task record is
  written (``Journal.set_task`` does nothing).
* ``no-fingerprint`` — finished tasks' fingerprints are neither taken nor recorded.
* ``null-logs`` — each task's ``.out``/``.err`` is a symbolic link to ``/dev/null`` made before
  the engine starts (the supervisor keeps a log file that exists), so the script writes nowhere.
* ``no-events`` — the engine publishes no task events (the run's own events still go out:
  the clean manifest listens to them).
* ``no-supervisor`` — ``LocalExecutor.submit``/``wait`` start the script with
  ``asyncio.create_subprocess_exec`` (output to the task's log files, a session of its own) and
  wait for it: no supervisor process, no pid records, no exit-code files.
* ``no-validate`` — the checks before a run return no problems.
* ``no-manifest`` — no clean manifest (the project's file lists at the start and the end).
* ``open-before`` — the project is opened before ``sharin.run`` is timed (its wall saving is
  the time of opening; its CPU is still counted).
* ``bare`` — all of the above at once but the supervisor: what is left is the engine's own
  scheduling of local tasks, through the supervisor.
* ``all`` — all of the above at once, the supervisor too.
* ``floor`` — the asyncio floor (``floor.py``) on a copy of the same project.

Each engine process also reports the CPU time of each of its threads (``time.thread_time()``
when the thread's ``run`` returns, and the main thread's at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = (
    "full",
    "no-mirror",
    "no-journal",
    "no-fingerprint",
    "null-logs",
    "no-events",
    "no-supervisor",
    "no-validate",
    "no-manifest",
    "open-before",
    "bare",
    "all",
)
PARTS = VARIANTS[1:-2]


# ---------------------------------------------------------------------- the engine process
def _no_mirror() -> None:
    from sharin.engine import _mirror

    _mirror.StateMirror.set = lambda self, *a, **k: None  # type: ignore[method-assign]


def _no_journal() -> None:
    from sharin.engine import _journal

    _journal.Journal.set_task = lambda self, *a, **k: None  # type: ignore[method-assign]


def _no_fingerprint() -> None:
    from sharin.engine import _engine

    async def no_fp(self: Any, c: Any, cdir: Any, key: str) -> None:
        return None

    _engine.Engine._keep_fingerprint = no_fp  # type: ignore[method-assign]


def _no_events() -> None:
    from sharin.engine import _engine

    emit = _engine.Engine._emit

    def quiet(self: Any, key: str, *a: Any, **k: Any) -> None:
        if not key:
            emit(self, key, *a, **k)

    _engine.Engine._emit = quiet  # type: ignore[method-assign]


def _no_validate() -> None:
    from sharin.interfaces import api

    api._check = lambda *a, **k: []  # type: ignore[attr-defined]


def _no_manifest() -> None:
    from sharin.interfaces import api

    async def none(cls: Any, root: Any) -> None:
        return None

    api._FileLists.start = classmethod(none)  # type: ignore[assignment,attr-defined]


def _parts(variant: str) -> tuple[str, ...]:
    """The parts a variant replaces."""
    if variant == "all":
        return PARTS
    if variant == "bare":
        return tuple(p for p in PARTS if p != "no-supervisor")
    return () if variant == "full" else (variant,)


def _patch(variant: str, project: str) -> Callable[[Any], Any] | None:
    """Replace the parts of sharin ``variant`` names in this process; returns a replacement
    of the project argument of ``sharin.run`` (``open-before``), or None."""
    parts = _parts(variant)
    patches: dict[str, Callable[[], None]] = {
        "no-mirror": _no_mirror,
        "no-journal": _no_journal,
        "no-fingerprint": _no_fingerprint,
        "null-logs": lambda: None,  # the links are made by the parent before this process
        "no-events": _no_events,
        "no-supervisor": _plain_subprocesses,
        "no-validate": _no_validate,
        "no-manifest": _no_manifest,
        "open-before": lambda: None,
    }
    for part in parts:
        if part not in patches:
            raise SystemExit(f"unknown variant {part}")
        patches[part]()
    if "open-before" not in parts:
        return None
    import sharin

    opened = sharin.open_project(project)
    return lambda p: opened


def _plain_subprocesses() -> None:
    from sharin.engine import JobHandle, JobResult
    from sharin.executors import local

    procs: dict[int, asyncio.subprocess.Process] = {}

    async def submit(self: Any, spec: Any) -> Any:
        script = local.task_script(spec, self._roots)
        local.prepare_script(script)
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        logs = os.fspath(spec.log_dir) + os.sep
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        out = os.open(f"{logs}{spec.log_stem}.out", flags, 0o644)
        err = os.open(f"{logs}{spec.log_stem}.err", flags, 0o644)
        try:
            proc = await asyncio.create_subprocess_exec(
                "./" + spec.script,
                cwd=str(spec.workdir),
                env=dict(spec.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        finally:
            os.close(out)
            os.close(err)
        procs[proc.pid] = proc
        return JobHandle("local", "localhost", str(proc.pid), {})

    async def wait(self: Any, handle: Any, spec: Any) -> Any:
        rc = await procs.pop(int(handle.native_id)).wait()
        return JobResult(rc, "" if rc == 0 else f"exit code {rc}")

    local.LocalExecutor.submit = submit  # type: ignore[method-assign]
    local.LocalExecutor.wait = wait  # type: ignore[method-assign]


_thread_cpu: dict[str, float] = {}
_thread_lock = threading.Lock()


def _count_threads() -> None:
    """Each thread's CPU time, added up by name (without a trailing number), when it ends."""
    run = threading.Thread.run

    def counted(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            name = re.sub(r"[-_]?\d+$", "", self.name) or "thread"
            with _thread_lock:
                _thread_cpu[name] = _thread_cpu.get(name, 0.0) + time.thread_time()

    threading.Thread.run = counted  # type: ignore[method-assign]


def child(variant: str, project: str, jobs: str) -> int:
    sys.path.insert(0, str(HERE))
    import engine_child

    import sharin

    _count_threads()
    wrap = _patch(variant, project)
    if wrap is not None:
        run = sharin.run
        sharin.run = lambda p, **k: run(wrap(p), **k)  # type: ignore[assignment]
    rc = engine_child.main(["engine_child.py", project, jobs])
    with _thread_lock:
        threads = dict(_thread_cpu)
    threads["main"] = time.thread_time()
    print(json.dumps({"threads": threads}), flush=True)
    return rc


# ---------------------------------------------------------------------- the benchmark
def _null_logs(project: Path, names: Sequence[str]) -> None:
    """The first run's log files as links to /dev/null (see ``null-logs``)."""
    from sharin.engine._layout import RunLayout

    layout = RunLayout(project)
    d = layout.run_dir(1)
    d.mkdir(parents=True, exist_ok=True)
    for name in names:
        for log in layout.task_logs(1, name):
            os.symlink(os.devnull, log)


def _engine(variant: str, project: Path, env: dict[str, str] | None) -> dict[str, Any]:
    import run as bench

    argv = [bench.PY, str(Path(__file__).resolve()), "--child", variant, str(project)]
    argv.append(str(bench.JOBS))
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if cp.returncode != 0:
        raise RuntimeError(
            f"{variant} on {project} failed ({cp.returncode}): {cp.stdout[-1000:]}"
            f"{cp.stderr[-2000:]}"
        )
    lines = [json.loads(x) for x in cp.stdout.strip().splitlines() if x.startswith("{")]
    out: dict[str, Any] = {}
    for d in lines:
        out.update(d)
    return out


def _fmt(values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return "–"
    m = statistics.median(values)
    if len(values) == 1:
        return f"{m:.3f} {unit}"
    return f"{m:.3f} ({min(values):.3f}–{max(values):.3f})"


def _saving(full: Sequence[float], values: Sequence[float]) -> str:
    if not full or not values:
        return "–"
    d = statistics.median(full) - statistics.median(values)
    return f"{d:+.3f}"


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--child"]:
        return child(*argv[1:4])
    sys.path.insert(0, str(HERE))
    import run as bench

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=",".join((*VARIANTS, "floor")))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--workload", choices=("W1", "W3"), default="W1", help="run.py's W1 (default) or W3"
    )
    args = ap.parse_args(argv)
    chosen = [v.strip() for v in args.only.split(",") if v.strip()]
    bad = [v for v in chosen if v not in (*VARIANTS, "floor")]
    if bad:
        print(f"unknown variant(s) {', '.join(bad)}", file=sys.stderr)
        return 2
    if "full" not in chosen:
        chosen.insert(0, "full")
    load_before = os.getloadavg()
    git = bench.git_describe()
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in chosen}
    wl = args.workload
    tasks = bench.w1_tasks() if wl == "W1" else bench.w3_tasks()
    with bench.scratch_base(args.workdir) as base:
        templates = base / "templates"
        templates.mkdir(exist_ok=True)
        scratch = bench.Scratch(base / "runs")
        probe_us = bench.creation_probe(base)
        bench.set_child_env(base / "pycache")
        template = templates / f"{wl.lower()}.wheel"
        if not (template / "prj.wheel.json").exists():  # built by an earlier run: --workdir
            bench.log(f"building {wl} ({len(tasks)} tasks)")
            template, _ = bench.build(templates, wl.lower(), tasks)
        for i in range(args.repeat):
            bench.log(f"repetition {i + 1}/{args.repeat}")
            for v in chosen:
                gc.collect()
                proj = scratch.copy(template, v)
                if v == "floor":
                    out = bench.floor_child(proj, tasks, proj.parent)
                else:
                    if "null-logs" in _parts(v):
                        _null_logs(proj, [t.name for t in tasks])
                    out = _engine(v, proj, bench.CHILD_ENV)
                    if out.get("state") != "finished":
                        raise RuntimeError(f"{v}: the run ended {out.get('state')}")
                bench.check_outputs(proj, tasks)
                results[v].append(out)
                scratch.drop(proj)
        scratch.close()
    load_after = os.getloadavg()
    full = results["full"]

    def col(v: str, key: str) -> list[float]:
        return [float(o[key]) for o in results[v] if key in o]

    print(f"## {wl} ablation: what each part of a local task's path costs\n")
    print(f"- command: `python benchmarks/ablate.py {' '.join(argv)}`".rstrip())
    print(f"- date: {t_start}; git {git}; {bench.JOBS} CPUs")
    print(
        "- load average (1, 5, 15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    print(f"- file creation probe before the runs: {probe_us:.0f} µs a file")
    print(f"- {args.repeat} repetitions, interleaved; median (min–max); saving = full − variant\n")
    print(
        "| variant | wall (`sharin.run`) | saving | runner CPU | saving | task-process CPU "
        "| saving | main thread CPU | mirror thread CPU | other threads CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in chosen:
        wall = col(v, "elapsed")
        cpu = col(v, "cpu_self")
        kids = col(v, "cpu_children")
        th = [o.get("threads", {}) for o in results[v]]
        main_t = [t["main"] for t in th if "main" in t]
        mirror_t = [t.get("sharin-state-mirror", 0.0) for t in th if "main" in t]
        other_t = [
            sum(x for k, x in t.items() if k not in ("main", "sharin-state-mirror"))
            for t in th
            if "main" in t
        ]
        print(
            f"| {v} | {_fmt(wall)} | {_saving(col('full', 'elapsed'), wall)} | {_fmt(cpu)} "
            f"| {_saving(col('full', 'cpu_self'), cpu)} | {_fmt(kids)} "
            f"| {_saving(col('full', 'cpu_children'), kids)} | {_fmt(main_t)} | {_fmt(mirror_t)} "
            f"| {_fmt(other_t)} |"
        )
    names = sorted({k for o in full for k in o.get("threads", {})})
    print()
    print(
        "- threads of the full engine (CPU s, median): "
        + ", ".join(
            f"{k} {statistics.median([o['threads'].get(k, 0.0) for o in full]):.3f}" for k in names
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
