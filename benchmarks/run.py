"""sharin's performance benchmarks: each figure beside the floor measured in the same run.

    python benchmarks/run.py [--only W0,W1,...] [--repeat N] [--mnist] [--profile DIR]

Every workload is built through the Python API (``sharin.new_project``, ``add_task``,
``connect``) in a scratch directory, once; each measurement then runs on a fresh copy of it. The
same scripts, in the same dependency order and with the same concurrency (the number of CPUs),
are also run by

* an asyncio floor (``floor.py``): ``asyncio.create_subprocess_exec`` of each script, nothing
  else (no journal, no state files, no logs);
* a shell floor: ``xargs -P<cpus>`` for each layer of independent tasks and a sequential shell
  loop for chains.

The report (markdown) goes to stdout, progress to stderr. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floor import Node, run_dag

import sharin

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FLOOR = HERE / "floor.py"
ENGINE_CHILD = HERE / "engine_child.py"
JOBS = os.cpu_count() or 1
PY = sys.executable

TRUE = "#!/bin/sh\ntrue\n"
ECHO = "#!/bin/sh\necho x > out\n"
STAMP = "#!/bin/sh\ndate +%s.%N > start\ndate +%s.%N > end\n"

ALL = ("W0", "W1", "W2", "W3", "W4")
DEFAULT_REPEAT = {"W0": 5, "W1": 5, "W2": 5, "W3": 5, "W4": 2, "MNIST": 1}
#: the start-up commands of W0 may take this long beyond `python -c pass` (seconds)
STARTUP_ABOVE_PYTHON = 0.15
TARGETS = {"W0": 0.3, "W1": 2.0, "W2": 3.0, "W3": 0.8, "W4": 15.0, "W4rss": 100.0, "MNIST": 3.0}
#: sharin's time may be at most this many times the asyncio floor's (median ÷ median)
RATIO_TARGETS = {"W1": 1.5, "W3": 1.5, "W4": 1.5}

#: the environment of sharin's engine processes (W1-W4), set in main(): sharin's bytecode
#: cached, as a regular install has it (see ``--bytecode``)
CHILD_ENV: dict[str, str] | None = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- workloads
@dataclass(frozen=True)
class TaskDef:
    name: str
    body: str
    deps: tuple[str, ...] = ()


def w0_tasks() -> list[TaskDef]:
    return [TaskDef("t", TRUE)]


def w1_tasks(n: int = 1000) -> list[TaskDef]:
    names = [f"t{i:04d}" for i in range(n)]
    return [TaskDef(x, TRUE) for x in names] + [TaskDef("gather", TRUE, tuple(names))]


def w2_tasks(n: int = 100) -> list[TaskDef]:
    names = [f"t{i:03d}" for i in range(n)]
    return [TaskDef(x, STAMP, (names[i - 1],) if i else ()) for i, x in enumerate(names)]


def w3_tasks(n: int = 200) -> list[TaskDef]:
    names = [f"f{i:03d}" for i in range(n)]
    return (
        [TaskDef("source", ECHO)]
        + [TaskDef(x, ECHO, ("source",)) for x in names]
        + [TaskDef("sink", ECHO, tuple(names))]
    )


def w4_tasks(n: int = 10_000) -> list[TaskDef]:
    return [TaskDef(f"t{i:05d}", TRUE) for i in range(n)]


def build(parent: Path, name: str, tasks: Sequence[TaskDef]) -> tuple[Path, float]:
    """Build the project with the Python API; returns its root and the seconds it took."""
    t0 = time.perf_counter()
    p = sharin.new_project(parent / name)
    comps: dict[str, sharin.Component] = {}
    # Project.batch() (where this sharin has it) defers rewriting prj.wheel.json to the end
    batch = getattr(p, "batch", None)
    with batch() if batch is not None else nullcontext():
        for t in tasks:
            comps[t.name] = sharin.add_task(p, t.name, t.body)
        for t in tasks:
            for d in t.deps:
                sharin.connect(p, comps[d], comps[t.name])
    return p.root, time.perf_counter() - t0


def layers(tasks: Sequence[TaskDef]) -> list[list[str]]:
    """Tasks grouped by depth (tasks must be listed after their dependencies)."""
    depth: dict[str, int] = {}
    out: list[list[str]] = []
    for t in tasks:
        d = 1 + max((depth[x] for x in t.deps), default=-1)
        depth[t.name] = d
        if d == len(out):
            out.append([])
        out[d].append(t.name)
    return out


def shell_script(root: Path, tasks: Sequence[TaskDef], listdir: Path) -> str:
    """The shell floor: ``xargs -P`` over each layer of independent tasks, a loop for a chain."""
    lines = ["#!/bin/sh", "set -e", f"R={shlex.quote(str(root))}"]
    lay = layers(tasks)
    i = 0
    while i < len(lay):
        if len(lay[i]) == 1:
            seq: list[str] = []
            while i < len(lay) and len(lay[i]) == 1:
                seq.append(lay[i][0])
                i += 1
            if len(seq) == 1:
                lines.append(f'cd "$R/{seq[0]}" && ./run.sh')
            else:
                lines.append(f'for d in {" ".join(seq)}; do cd "$R/$d" && ./run.sh; done')
        else:
            lst = listdir / f"layer{i}.txt"
            lst.write_text("".join(f"{root / n}\n" for n in lay[i]))
            lines.append(
                f"xargs -P{JOBS} -n1 -a {shlex.quote(str(lst))} "
                "sh -c 'cd \"$1\" && exec ./run.sh' sh"
            )
            i += 1
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- running
def creation_probe(where: Path, n: int = 300) -> float:
    """Microseconds to create one empty file in a new directory below ``where`` (median of
    ``n``). About 7 µs on a quiet ext4 here; tens to hundreds of µs while the file system is
    passing over inodes freed in the last minutes (see :class:`Scratch`): sharin's figures,
    which create files, then rise while the floors', which create none, do not."""
    probe = where / f"probe-{os.getpid()}-{time.monotonic_ns()}"
    probe.mkdir()
    times = []
    for i in range(n):
        t = time.perf_counter()
        os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


class Scratch:
    """Fresh copies of built projects, removed when the benchmark ends, not after each use.

    Removing a copy between measurements would make the next ones slower for a reason of the
    file system's, not of what is measured: ext4 without a journal (as on the VMs these figures
    come from: no ``/proc/fs/jbd2``) will not reuse an inode freed 1–60 s ago (up to 360 s
    while its inode table block is dirty), and it looks at each such free inode when it
    allocates one (``recently_deleted()`` in ``fs/ext4/ialloc.c``). After 3,000 files were
    removed, creating a file took 139 µs of CPU here instead of 9 µs, for a minute. The floors
    create no files, so only sharin paid it, by an amount that depended on what the benchmark
    had removed just before."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.n = 0
        self._used: list[Path] = []

    def new_dir(self, label: str) -> Path:
        self.n += 1
        d = self.base / f"{label}-{self.n}"
        d.mkdir(parents=True)
        return d

    def copy(self, template: Path, label: str) -> Path:
        dst = self.new_dir(label) / template.name
        shutil.copytree(template, dst, symlinks=True)
        return dst

    def drop(self, path: Path) -> None:
        """``path`` is no longer needed: removed by :meth:`close`."""
        self._used.append(path.parent if path.name.endswith(".wheel") else path)

    def close(self) -> None:
        for path in self._used:
            shutil.rmtree(path, ignore_errors=True)
        self._used.clear()


def sharin_child(
    project: Path, profile: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``sharin.run`` in a fresh Python process (engine_child.py); adds the process's wall time."""
    argv = [PY, str(ENGINE_CHILD), str(project), str(JOBS)]
    if profile is not None:
        argv.append(str(profile))
    t0 = time.perf_counter()
    env = env if env is not None else CHILD_ENV
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if cp.returncode != 0:
        raise RuntimeError(f"sharin run of {project} failed ({cp.returncode}): {cp.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(cp.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


def floor_child(project: Path, tasks: Sequence[TaskDef], specdir: Path) -> dict[str, Any]:
    """The asyncio floor in a fresh Python process; adds the process's wall time."""
    spec = specdir / "spec.json"
    nodes = [{"name": t.name, "deps": list(t.deps)} for t in tasks]
    spec.write_text(
        json.dumps({"jobs": JOBS, "root": str(project), "script": "run.sh", "nodes": nodes})
    )
    t0 = time.perf_counter()
    cp = subprocess.run([PY, str(FLOOR), str(spec)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if cp.returncode != 0:
        raise RuntimeError(f"asyncio floor on {project} failed: {cp.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(cp.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


def shell_run(project: Path, tasks: Sequence[TaskDef], specdir: Path) -> float:
    script = specdir / "floor.sh"
    script.write_text(shell_script(project, tasks, specdir))
    t0 = time.perf_counter()
    cp = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if cp.returncode != 0:
        raise RuntimeError(f"shell floor on {project} failed: {cp.stderr[-2000:]}")
    return wall


def check_outputs(project: Path, tasks: Sequence[TaskDef]) -> None:
    """Every task that writes ``out`` (or ``end``) did."""
    for t in tasks:
        name = "out" if t.body == ECHO else "end" if t.body == STAMP else None
        if name and not (project / t.name / name).is_file():
            raise RuntimeError(f"{project / t.name / name} is missing: the task did not run")


def script_hops_ms(project: Path, names: Sequence[str]) -> list[float]:
    """Latency from one task's end to the next one's start, from timestamps the scripts wrote."""
    start = [float((project / n / "start").read_text()) for n in names]
    end = [float((project / n / "end").read_text()) for n in names]
    return [(start[i + 1] - end[i]) * 1e3 for i in range(len(names) - 1)]


def journal_hops_ms(project: Path, names: Sequence[str]) -> list[float]:
    """The same from sharin's journal (a task's ``ended`` to the next one's ``started``)."""
    db = sqlite3.connect(project / ".sharin" / "journal.sqlite")
    try:
        run = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
        rows = dict(
            (k, (s, e))
            for k, s, e in db.execute(
                "SELECT key, started, ended FROM tasks WHERE run=? AND kind='task'", (run,)
            )
        )
    finally:
        db.close()
    return [(rows[names[i + 1]][0] - rows[names[i]][1]) * 1e3 for i in range(len(names) - 1)]


# ---------------------------------------------------------------------- results
@dataclass
class Row:
    workload: str
    metric: str
    unit: str
    sharin: list[float] = field(default_factory=list)
    floor: list[float] | None = None
    shell: list[float] | None = None
    target: float | None = None
    target_text: str = ""
    #: the most sharin's median may be, divided by the asyncio floor's median
    ratio_target: float | None = None


def fmt(values: list[float] | None, unit: str) -> str:
    if not values:
        return "–"
    med = statistics.median(values)
    digits = 3 if unit == "s" and med < 10 else 2 if unit in ("s", "ms") else 1
    text = f"{med:.{digits}f} {unit}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}–{max(values):.{digits}f})"
    return text


def ratio(row: Row) -> str:
    ref = row.floor
    if not row.sharin or not ref:
        return "–"
    den = statistics.median(ref)
    return f"{statistics.median(row.sharin) / den:.1f}×" if den > 0 else "–"


def verdict(row: Row) -> str:
    if (row.target is None and row.ratio_target is None) or not row.sharin:
        return ""
    ok = row.target is None or statistics.median(row.sharin) <= row.target
    if row.ratio_target is not None and row.floor:
        ok = ok and statistics.median(row.sharin) <= row.ratio_target * statistics.median(row.floor)
    return "PASS" if ok else "MISS"


def table(rows: Sequence[Row]) -> str:
    head = [
        "workload",
        "metric",
        "sharin",
        "asyncio floor",
        f"xargs -P{JOBS} / sh loop",
        "sharin ÷ asyncio floor",
        "target",
        "",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [
            r.workload,
            r.metric,
            fmt(r.sharin, r.unit),
            fmt(r.floor, r.unit),
            fmt(r.shell, r.unit),
            ratio(r),
            r.target_text,
            verdict(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, workload: str, metric: str, unit: str, **kw: Any) -> Row:
        r = Row(workload, metric, unit, **kw)
        self.rows.append(r)
        return r


@dataclass
class Measured:
    """What bench_generic measured beyond the row: the raw child outputs and kept copies."""

    row: Row
    build_seconds: float
    sharin: list[dict[str, Any]] = field(default_factory=list)
    floor: list[dict[str, Any]] = field(default_factory=list)
    copies: dict[str, list[Path]] = field(default_factory=dict)


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------------- the workloads
def interleaved(n: int, *steps: Callable[[], None]) -> None:
    """Run each step n times, interleaved (a, b, c, a, b, c, ...) so that load drifts hit all."""
    for i in range(n):
        log(f"  repetition {i + 1}/{n}")
        for s in steps:
            gc.collect()
            s()


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's children that have been waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sharin_script() -> str:
    """The console script installed next to this interpreter (not a pyenv shim)."""
    cand = Path(sysconfig.get_path("scripts")) / "sharin"
    return str(cand) if cand.exists() else shutil.which("sharin") or "sharin"


def bench_w0(rep: Report, base: Path, scratch: Scratch, n: int) -> None:
    tasks = w0_tasks()
    template, secs = build(base, "w0", tasks)
    rep.notes.append(f"W0 build: {secs:.2f} s")
    cli = rep.row("W0", "1 task: `sharin run` CLI, whole command", "s", target=TARGETS["W0"])
    cli.target_text = "≤ 0.3 s"
    api = rep.row("W0", "1 task: `sharin.run()` in-process", "s", target=TARGETS["W0"])
    api.target_text = "≤ 0.3 s"
    cli.floor, cli.shell, api.floor, api.shell = [], [], [], []
    script = sharin_script()
    on_path = shutil.which("sharin")
    shim = on_path is not None and Path(on_path).resolve() != Path(script).resolve()
    # With PYTHONDONTWRITEBYTECODE set, an editable install compiles sharin at every start;
    # a regular install has its bytecode compiled once. Measure that too, cache in scratch.
    pyc_env = dict(os.environ, PYTHONPYCACHEPREFIX=str(base / "pycache"))
    pyc_env.pop("PYTHONDONTWRITEBYTECODE", None)
    nocache = bool(os.environ.get("PYTHONDONTWRITEBYTECODE")) or sys.dont_write_bytecode
    pyc = rep.row("W0", "1 task: CLI with sharin's bytecode cached", "s") if nocache else None
    if pyc is not None:
        pyc.floor, pyc.shell = cli.floor, cli.shell
        pyc.target, pyc.target_text = TARGETS["W0"], "≤ 0.3 s"
        subprocess.run([script, "--version"], env=pyc_env, check=True, stdout=subprocess.DEVNULL)
    shim_row = rep.row("W0", f"1 task: CLI via PATH ({on_path})", "s") if shim else None
    pystart: list[float] = []
    # start-up of commands that run nothing, beside `python -c pass` (their floor column)
    done = scratch.copy(template, "w0done")
    subprocess.run([script, "run", str(done), "-q"], check=True, stdout=subprocess.DEVNULL)
    startup_cmds = {
        "`sharin --help`": ["--help"],
        "`sharin status` of a finished project": ["status", str(done)],
        "`sharin validate`": ["validate", str(done)],
    }
    startup: list[tuple[Row, list[str], dict[str, str] | None]] = []
    for label, words in startup_cmds.items():
        startup.append((rep.row("W0", f"start-up: {label}", "s", floor=pystart), words, None))
        if nocache:
            subprocess.run([script, *words], env=pyc_env, check=True, stdout=subprocess.DEVNULL)
            row = rep.row("W0", f"start-up: {label}, bytecode cached", "s", floor=pystart)
            startup.append((row, words, pyc_env))
    # the same commands' CPU time (user + system of the process), beside that of `python -c
    # pass`: much less sensitive to other load than their wall time
    pystart_cpu: list[float] = []
    startup_cpu = [
        rep.row("W0", f"{row.metric}, CPU time", "s", floor=pystart_cpu) for row, _, _ in startup
    ]

    def run_cli() -> None:
        proj = scratch.copy(template, "w0cli")
        t0 = time.perf_counter()
        subprocess.run(
            [script, "run", str(proj), "-q", "-j", str(JOBS)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cli.sharin.append(time.perf_counter() - t0)
        scratch.drop(proj)

    def run_cli_shim() -> None:
        assert shim_row is not None and on_path is not None
        proj = scratch.copy(template, "w0shim")
        t0 = time.perf_counter()
        subprocess.run(
            [on_path, "run", str(proj), "-q", "-j", str(JOBS)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shim_row.sharin.append(time.perf_counter() - t0)
        scratch.drop(proj)

    def run_cli_pyc() -> None:
        assert pyc is not None
        proj = scratch.copy(template, "w0pyc")
        t0 = time.perf_counter()
        subprocess.run(
            [script, "run", str(proj), "-q", "-j", str(JOBS)],
            check=True,
            stdout=subprocess.DEVNULL,
            env=pyc_env,
        )
        pyc.sharin.append(time.perf_counter() - t0)
        scratch.drop(proj)

    def run_api() -> None:
        proj = scratch.copy(template, "w0api")
        t0 = time.perf_counter()
        r = sharin.run(proj, options=sharin.RunOptions(max_local=JOBS))
        api.sharin.append(time.perf_counter() - t0)
        assert r.ok, r
        scratch.drop(proj)

    def run_floor_process() -> None:
        proj = scratch.copy(template, "w0floor")
        out = floor_child(proj, tasks, proj.parent)
        assert cli.floor is not None
        cli.floor.append(out["wall"])
        scratch.drop(proj)

    def run_floor_inprocess() -> None:
        proj = scratch.copy(template, "w0floorapi")
        t0 = time.perf_counter()
        failed = asyncio.run(run_dag(proj, [Node(t.name, t.deps) for t in tasks], JOBS))
        assert api.floor is not None and failed == 0
        api.floor.append(time.perf_counter() - t0)
        scratch.drop(proj)

    def run_shell() -> None:
        proj = scratch.copy(template, "w0sh")
        wall = shell_run(proj, tasks, proj.parent)
        assert cli.shell is not None and api.shell is not None
        cli.shell.append(wall)
        api.shell.append(wall)
        scratch.drop(proj)

    def run_pystart() -> None:
        c0, t0 = children_cpu(), time.perf_counter()
        subprocess.run([PY, "-c", "pass"], check=True)
        pystart.append(time.perf_counter() - t0)
        pystart_cpu.append(children_cpu() - c0)

    def run_startup() -> None:
        for (row, words, env), cpu in zip(startup, startup_cpu, strict=True):
            c0, t0 = children_cpu(), time.perf_counter()
            subprocess.run([script, *words], check=True, stdout=subprocess.DEVNULL, env=env)
            row.sharin.append(time.perf_counter() - t0)
            cpu.sharin.append(children_cpu() - c0)

    steps = [run_cli, run_api, run_floor_process, run_floor_inprocess, run_shell, run_pystart]
    steps.append(run_startup)
    if pyc is not None:
        steps.append(run_cli_pyc)
    if shim:
        steps.append(run_cli_shim)
    interleaved(n, *steps)
    scratch.drop(done)
    for row, _, _ in startup:
        row.target = med(pystart) + STARTUP_ABOVE_PYTHON
        row.target_text = f"≤ python + {STARTUP_ABOVE_PYTHON} s ({row.target:.3f} s)"
    for row in startup_cpu:
        row.target = med(pystart_cpu) + STARTUP_ABOVE_PYTHON
        row.target_text = f"≤ python + {STARTUP_ABOVE_PYTHON} s ({row.target:.3f} s)"
    rep.notes.append(
        f"W0 start-up rows: `{script} --help`, `… status PROJECT` (a project whose one task "
        "finished), `… validate PROJECT`, each run to its exit with its output to /dev/null; "
        f"their floor column is `{PY} -c pass`, measured in the same repetitions. Their CPU "
        "time rows give the user + system seconds of the same processes (and of `python -c "
        "pass`), which other load on the machine changes much less than their wall time."
    )
    rep.notes.append(
        f"W0: Python start-up alone (`{PY} -c pass`): {fmt(pystart, 's')}; the asyncio floor of "
        "the CLI row is `python floor.py` (start-up + one task), of the in-process row "
        "`asyncio.run(run_dag(...))`; the shell floor is the same `sh` script for both rows."
    )
    if pyc is not None:
        rep.notes.append(
            "W0: PYTHONDONTWRITEBYTECODE is set here, so an editable install compiles sharin's "
            "modules at every start; the 'bytecode cached' row unsets it and caches the bytecode "
            "in the scratch directory (PYTHONPYCACHEPREFIX), as a regular install would have it."
        )


def bench_generic(
    rep: Report,
    base: Path,
    scratch: Scratch,
    key: str,
    tasks: list[TaskDef],
    metric: str,
    target_text: str,
    n: int,
    profile: Path | None,
) -> Measured:
    log(f"{key}: building {len(tasks)} tasks through the API")
    template, secs = build(base, key.lower(), tasks)
    how = "in `Project.batch()`" if hasattr(sharin.Project, "batch") else "one call at a time"
    rep.notes.append(
        f"{key} build ({len(tasks)} tasks through the API, {how}; not timed): {secs:.1f} s"
    )
    row = rep.row(key, metric, "s", floor=[], shell=[], target=TARGETS[key])
    row.ratio_target = RATIO_TARGETS.get(key)
    row.target_text = target_text
    if row.ratio_target is not None:
        row.target_text += f"; ≤ {row.ratio_target:g}× floor"
    m = Measured(row, secs, copies={"sharin": [], "floor": [], "shell": []})
    copies = m.copies

    def run_sharin() -> None:
        proj = scratch.copy(template, f"{key}-sharin")
        out = sharin_child(proj)
        check_outputs(proj, tasks)
        row.sharin.append(out["elapsed"])
        m.sharin.append(out)
        keep(copies["sharin"], proj)

    def run_floor() -> None:
        proj = scratch.copy(template, f"{key}-floor")
        out = floor_child(proj, tasks, proj.parent)
        check_outputs(proj, tasks)
        assert row.floor is not None
        row.floor.append(out["elapsed"])
        m.floor.append(out)
        keep(copies["floor"], proj)

    def run_shell() -> None:
        proj = scratch.copy(template, f"{key}-shell")
        wall = shell_run(proj, tasks, proj.parent)
        check_outputs(proj, tasks)
        assert row.shell is not None
        row.shell.append(wall)
        keep(copies["shell"], proj)

    def keep(lst: list[Path], proj: Path) -> None:
        if key == "W2":
            lst.append(proj)  # timestamps are read after all repetitions
        else:
            scratch.drop(proj)

    log(f"{key}: running ({n} repetitions; sharin, asyncio floor, shell floor)")
    interleaved(n, run_sharin, run_floor, run_shell)
    late = sorted({x for o in m.sharin for x in o.get("late_imports", ())})
    rep.notes.append(
        f"{key}: each engine process imported sharin and the modules a local run loads in "
        f"{fmt([o['import'] for o in m.sharin], 's')} before its clock started, as the asyncio floor "
        "imports asyncio before its own (W0's CLI rows and W4's process row include it)"
        + (f"; imported inside the timed run, and counted there: {', '.join(late)}" if late else "")
    )
    around = [o for o in m.sharin if "before_first" in o]
    if around:
        rep.notes.append(
            f"{key}: the first task started {fmt([o['before_first'] for o in around], 's')} "
            "after `sharin.run()` was called (opening, checking, the journal, the helper "
            f"processes' start), and `sharin.run()` returned "
            f"{fmt([o['after_last'] for o in around], 's')} after the last task had ended (its "
            "states, the journal's end, the supervisor's exit, the project's file list)"
        )
    if profile is not None:
        log(f"{key}: one more sharin run under cProfile")
        proj = scratch.copy(template, f"{key}-profile")
        sharin_child(proj, profile / f"{key}.prof")
        scratch.drop(proj)
        write_profile_summary(profile / f"{key}.prof")
    return m


def cpu_rows(rep: Report, key: str, m: Measured) -> None:
    """CPU seconds (user + system): robust where wall time suffers from other load."""
    own = rep.row(key, "CPU time of the runner process (all its threads)", "s")
    own.sharin = [o["cpu_self"] for o in m.sharin]
    own.floor = [o["cpu_self"] for o in m.floor]
    kids = rep.row(key, "CPU time of the task processes (wrappers and scripts)", "s")
    kids.sharin = [o["cpu_children"] for o in m.sharin]
    kids.floor = [o["cpu_children"] for o in m.floor]


def write_profile_summary(prof: Path) -> None:
    import io
    import pstats

    buf = io.StringIO()
    st = pstats.Stats(str(prof), stream=buf)
    st.sort_stats("tottime").print_stats(25)
    st.sort_stats("cumulative").print_stats(40)
    prof.with_suffix(".txt").write_text(buf.getvalue())


def bench_w2(rep: Report, base: Path, scratch: Scratch, n: int, profile: Path | None) -> None:
    tasks = w2_tasks()
    names = [t.name for t in tasks]
    m = bench_generic(rep, base, scratch, "W2", tasks, "chain of 100: total", "", n, profile)
    row, copies = m.row, m.copies
    row.target = None
    hop = Row("W2", "chain of 100: median hop (script end → next start)", "ms")
    hop.target, hop.target_text = TARGETS["W2"], "≤ 3 ms/hop"
    # per repetition: the median hop of that run; the table shows the median of those
    hop.sharin = [med(script_hops_ms(p, names)) for p in copies["sharin"]]
    hop.floor = [med(script_hops_ms(p, names)) for p in copies["floor"]]
    hop.shell = [med(script_hops_ms(p, names)) for p in copies["shell"]]
    jhop = [med(journal_hops_ms(p, names)) for p in copies["sharin"]]
    all_hops = [h for p in copies["sharin"] for h in script_hops_ms(p, names)]
    date_ms = [
        (float((p / x / "end").read_text()) - float((p / x / "start").read_text())) * 1e3
        for p in copies["shell"]
        for x in names
    ]
    rep.rows.insert(rep.rows.index(row), hop)
    rep.notes.append(
        "W2: hops are measured from `date +%s.%N` stamps the scripts write (so each hop includes "
        "spawning the next script and its first `date`); sharin hop p90 "
        f"{statistics.quantiles(all_hops, n=10)[-1]:.2f} ms, max {max(all_hops):.2f} ms; "
        f"inside the engine (journal `ended` → next `started`): median {fmt(jhop, 'ms')}; "
        f"one `date` call inside a script (its `end` − `start`) takes {med(date_ms):.2f} ms."
    )
    for lst in copies.values():
        for p in lst:
            scratch.drop(p)


def bench_w4(rep: Report, base: Path, scratch: Scratch, n: int, profile: Path | None) -> None:
    tasks = w4_tasks()
    m = bench_generic(
        rep, base, scratch, "W4", tasks, "10,000 independent tasks: run", "≤ 15 s", n, profile
    )
    row = m.row
    cpu_rows(rep, "W4", m)
    rss = rep.row("W4", "engine peak RSS (ru_maxrss of the engine process)", "MB")
    rss.sharin = [o["maxrss_kb"] / 1024 for o in m.sharin]
    rss.floor = [o["maxrss_kb"] / 1024 for o in m.floor]
    rss.target, rss.target_text = TARGETS["W4rss"], "≤ 100 MB"
    wall = rep.row("W4", "process wall (Python start-up + import + run)", "s")
    wall.sharin = [o["wall"] for o in m.sharin]
    wall.floor = [o["wall"] for o in m.floor]
    wall.shell = list(row.shell or [])
    build_row = rep.row("W4", "build the project through the API (not in the run)", "s")
    build_row.sharin = [m.build_seconds]


# ---------------------------------------------------------------------- MNIST
def bench_mnist(rep: Report, scratch: Scratch, n: int) -> None:
    src = REPO / "examples" / "mnist_tensorflow.wheel"
    npz = Path("/work/shared/datasets/mnist/mnist.npz")
    npz = Path(os.environ.get("MNIST_NPZ", npz))
    why = ""
    if not (src / "prj.wheel.json").is_file():
        why = f"{src} is not there"
    elif not npz.is_file():
        why = f"{npz} is not there (set MNIST_NPZ)"
    else:
        cp = subprocess.run([PY, "-c", "import tensorflow"], capture_output=True, text=True)
        if cp.returncode != 0:
            last = (cp.stderr.strip().splitlines() or ["?"])[-1]
            why = f"tensorflow cannot be imported ({last})"
    if why:
        log(f"MNIST: skipped: {why}")
        rep.notes.append(f"MNIST: skipped: {why}")
        return
    env = dict(os.environ, MNIST_NPZ=str(npz))
    row = rep.row(
        "MNIST", "train → estimate: `sharin run` CLI (by hand in the shell column)", "s", shell=[]
    )
    script = sharin_script()
    # output to files, as sharin does with a task's stdout and stderr
    hand = (
        "cd train && ./run.sh >run.out 2>run.err && cp param.hdf5 ../estimate/ && "
        "cd ../estimate && ./run.sh >run.out 2>run.err"
    )
    own = Row("MNIST", "sharin's own time: CLI wall − Σ task time (journal)", "s")

    def run_sharin() -> None:
        d = scratch.new_dir("mnist-sharin")
        proj = sharin.copy_project(src, d / "mnist.wheel").root
        t0 = time.perf_counter()
        subprocess.run(
            [script, "run", str(proj), "-q", "-j", str(JOBS)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        row.sharin.append(wall)
        if not (proj / "estimate" / "eval.log").is_file():
            raise RuntimeError("MNIST via sharin: no estimate/eval.log")
        own.sharin.append(wall - task_seconds(proj))
        scratch.drop(proj)

    def run_hand() -> None:
        proj = scratch.copy(src, "mnist-hand")
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", hand], cwd=proj, env=env, check=True)
        assert row.shell is not None
        row.shell.append(time.perf_counter() - t0)
        if not (proj / "estimate" / "eval.log").is_file():
            raise RuntimeError("MNIST by hand: no estimate/eval.log")
        scratch.drop(proj)

    log("MNIST: warming the page cache (import tensorflow; not timed)")
    subprocess.run([PY, "-c", "import tensorflow"], env=env, capture_output=True, check=False)
    log(f"MNIST: {n} repetitions of sharin and by hand (alternating which goes first)")
    for i in range(n):
        log(f"  repetition {i + 1}/{n}")
        for step in (run_sharin, run_hand) if i % 2 == 0 else (run_hand, run_sharin):
            step()
    over = rep.row("MNIST", "sharin overhead over running the scripts by hand", "%")
    by_hand = med(row.shell or [float("nan")])
    over.sharin = [(med(row.sharin) - by_hand) / by_hand * 100]
    over.target, over.target_text = TARGETS["MNIST"], "≤ 3 %"
    rep.rows.append(own)
    share = rep.row("MNIST", "sharin's own time as a share of the run (noise-free estimate)", "%")
    share.sharin = [o / w * 100 for o, w in zip(own.sharin, row.sharin, strict=True)]
    share.target, share.target_text = TARGETS["MNIST"], "≤ 3 %"
    rep.notes.append(
        "MNIST: TensorFlow's run time varies by several seconds from run to run on a shared "
        "machine, so the difference of medians is noisy; sharin's own time (CLI wall time minus "
        "the time the journal records its tasks as started → ended, the tasks running one after "
        "the other) measures what sharin adds without that noise. It includes the CLI's start-up."
    )


def task_seconds(project: Path) -> float:
    """Σ (ended − started) of the tasks in the project's last run, from sharin's journal."""
    db = sqlite3.connect(project / ".sharin" / "journal.sqlite")
    try:
        (total,) = db.execute(
            "SELECT SUM(ended - started) FROM tasks "
            "WHERE run = (SELECT MAX(id) FROM runs) AND kind = 'task'"
        ).fetchone()
    finally:
        db.close()
    return float(total or 0.0)


# ---------------------------------------------------------------------- report
def git_describe() -> str:
    def git(*args: str) -> str:
        cp = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return cp.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    if not git("status", "--porcelain", "--", "src"):
        return head
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--", "src"], cwd=REPO, capture_output=True, check=False
    ).stdout
    return f"{head} + uncommitted changes in src/ (diff sha1 {hashlib.sha1(diff).hexdigest()[:8]})"


def git_span(before: str, after: str) -> str:
    if before == after:
        return before
    return f"{before} at the start, {after} at the end: the code changed during the run!"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def header(
    argv: Sequence[str],
    base: Path,
    load_before: tuple[float, ...],
    git_before: str,
    probe_us: float,
) -> str:
    from importlib.metadata import version

    load_after = os.getloadavg()
    cmd = shlex.join(["python", "benchmarks/run.py", *argv])
    fs = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "--target", str(base)], capture_output=True, text=True
    ).stdout.strip()
    return "\n".join(
        [
            f"command: `{cmd}`",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"- machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} "
            f"{platform.release()}, scratch on {fs or '?'}",
            f"- Python {platform.python_version()} ({platform.python_implementation()}), "
            f"sharin {version('sharin')} (git {git_span(git_before, git_describe())})",
            f"- concurrency {JOBS} everywhere: `RunOptions(max_local={JOBS})` / `-j {JOBS}`, "
            f"{JOBS} asyncio workers, `xargs -P{JOBS}`",
            "- load average (1, 5, 15 min) before: "
            + " ".join(f"{x:.2f}" for x in load_before)
            + ", after: "
            + " ".join(f"{x:.2f}" for x in load_after),
            f"- file creation probe before the runs: {probe_us:.0f} µs a file (~7 µs on a quiet "
            "ext4 here; far more while it passes over recently freed inodes)",
            "- figures: median (min–max) over the repetitions; sharin W1–W4 = time inside "
            "`sharin.run()` in a fresh engine process (open + validate + run), asyncio floor = "
            "`asyncio.run(...)` in a fresh process, shell floor = wall time of the `sh` script",
            "- sharin's engine processes (W1–W4): "
            + (
                "bytecode cached (in the scratch directory), as a regular install has it"
                if CHILD_ENV is not None
                else "the environment as it is"
                + (
                    " (PYTHONDONTWRITEBYTECODE set: sharin is compiled at every start)"
                    if os.environ.get("PYTHONDONTWRITEBYTECODE")
                    else ""
                )
            ),
        ]
    )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--only",
        default=",".join(ALL),
        help="workloads, e.g. W0,W2 (default: W0-W4); MNIST is also accepted",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions of every measurement (default: W0-W3 5, W4 2, MNIST 1)",
    )
    ap.add_argument("--mnist", action="store_true", help="also the MNIST example (tensorflow)")
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="dump cProfile stats of one extra sharin run per workload (W1-W4) into this directory",
    )
    ap.add_argument(
        "--bytecode",
        choices=("cached", "env"),
        default="cached",
        help="W1-W4: run sharin's engine with its bytecode compiled once into the scratch "
        "directory, as a regular install has it (cached, the default), or with the environment "
        "as it is (env: with PYTHONDONTWRITEBYTECODE set, sharin is compiled at every start)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="scratch directory (default: a new temporary one, removed at the end)",
    )
    return ap.parse_args(argv)


@contextmanager
def scratch_base(arg: Path | None) -> Iterator[Path]:
    if arg is not None:
        arg.mkdir(parents=True, exist_ok=True)
        yield arg.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="sharin-bench-") as d:
        yield Path(d)


def set_child_env(prefix: Path) -> None:
    """sharin's bytecode compiled once, into ``prefix``, for the engine processes."""
    global CHILD_ENV
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(prefix))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    package = Path(sharin.__file__).parent
    subprocess.run([PY, "-m", "compileall", "-q", str(package)], env=env, check=True)
    CHILD_ENV = env


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    only = [x.strip().upper() for x in args.only.split(",") if x.strip()]
    bad = [x for x in only if x not in (*ALL, "MNIST")]
    if bad:
        print(
            f"unknown workload(s) {', '.join(bad)}; choose from {', '.join(ALL)}, MNIST",
            file=sys.stderr,
        )
        return 2
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()

    def reps(key: str) -> int:
        return int(args.repeat) if args.repeat else DEFAULT_REPEAT[key]

    load_before = os.getloadavg()
    git_before = git_describe()
    rep = Report()
    with scratch_base(args.workdir) as base:
        templates = base / "templates"
        templates.mkdir(exist_ok=True)
        scratch = Scratch(base / "runs")
        probe_us = creation_probe(base)
        if args.bytecode == "cached":
            set_child_env(base / "pycache")
        if "W0" in only:
            log("W0: one task")
            bench_w0(rep, templates, scratch, reps("W0"))
        if "W1" in only:
            m1 = bench_generic(
                rep,
                templates,
                scratch,
                "W1",
                w1_tasks(),
                "1,000 independent + 1 gather",
                "≤ 2.0 s",
                reps("W1"),
                args.profile,
            )
            cpu_rows(rep, "W1", m1)
        if "W2" in only:
            bench_w2(rep, templates, scratch, reps("W2"), args.profile)
        if "W3" in only:
            bench_generic(
                rep,
                templates,
                scratch,
                "W3",
                w3_tasks(),
                "1 → 200 → 1 (fan-out, fan-in)",
                "≤ 0.8 s",
                reps("W3"),
                args.profile,
            )
        if "W4" in only:
            bench_w4(rep, templates, scratch, reps("W4"), args.profile)
        if args.mnist or "MNIST" in only:
            bench_mnist(rep, scratch, reps("MNIST"))
        head = header(argv, base, load_before, git_before, probe_us)
        scratch.close()
    print("## sharin benchmarks\n")
    print(head)
    print()
    print(table(rep.rows))
    print()
    for note in rep.notes:
        print(f"- {note}")
    if args.profile is not None:
        print(f"- cProfile statistics of one extra sharin run per workload: {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
