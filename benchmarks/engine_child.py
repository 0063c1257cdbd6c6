"""Run one project with ``sharin.run`` in a process of its own and report time and memory.

    python benchmarks/engine_child.py PROJECT JOBS [PROFILE_OUT]

Prints one JSON line: ``import`` (seconds to import sharin and the modules a local run loads,
:data:`RUN_MODULES`: ``import sharin`` alone loads almost nothing, and the floors import asyncio
before their clocks start too), ``elapsed`` (seconds spent in ``sharin.run``: opening,
validating and running the project), ``late_imports`` (modules of sharin that the run still
imported inside ``elapsed``: their time is counted there), ``maxrss_kb`` (peak resident set of
this process alone: ``RUSAGE_SELF`` does not count the task processes), ``cpu_self`` and
``cpu_children`` (user + system CPU seconds of this process, all its threads, and of the task
processes), ``state``, and ``before_first`` and ``after_last`` (seconds from the call of
``sharin.run`` to the first local task's start, and from the last one's end to the return:
what the run costs around its tasks).
With PROFILE_OUT, the run happens under cProfile and the statistics are dumped there.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import resource
import sys
import time
from pathlib import Path

#: the modules of sharin that running a local project loads (what ``sharin run`` imports
#: before it runs anything); W0's CLI rows and W4's process row count their import
RUN_MODULES = (
    "sharin.interfaces.api",
    "sharin.interfaces._runs",
    "sharin.engine._engine",
    "sharin.engine._control",
    "sharin.engine._jobs",
    "sharin.engine._journal",
    "sharin.engine._mirror",
    "sharin.engine._fingerprint",
    "sharin.engine._taskfields",
    "sharin.engine._worker",
    "sharin.executors",
    "sharin.executors.local",
    "sharin.model._validate",
    "sharin.model._clean",
    "sharin.model._cleanup",
    "sharin.model._git",
    "sharin.model._hosts",
    "sharin.model._paramstudy",
    "sharin.model._schema",
)


def _task_times(project: str) -> tuple[float | None, float | None]:
    """When the run's first local task started and its last one ended (wall clock): the
    supervisor's pid records (each task's start time) and the exit-code files (the time of the
    last exit written to each)."""
    runs = Path(project) / ".sharin" / "runs"
    starts = []
    for records in runs.glob("*/supervisor-*.pids"):
        for line in records.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                starts.append(float(json.loads(line)["time"]))
    ends = [p.stat().st_mtime for p in runs.glob("*/*.rc")]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: python engine_child.py PROJECT JOBS [PROFILE_OUT]", file=sys.stderr)
        return 2
    project, jobs = argv[1], int(argv[2])
    t0 = time.perf_counter()
    import sharin

    for name in RUN_MODULES:
        importlib.import_module(name)
    loaded = {m for m in sys.modules if m.startswith("sharin")}
    t1 = time.perf_counter()
    options = sharin.RunOptions(max_local=jobs)
    if len(argv) == 4:
        import cProfile

        prof = cProfile.Profile()
        t2 = time.perf_counter()
        result = prof.runcall(sharin.run, project, options=options)
        t3 = time.perf_counter()
        prof.dump_stats(argv[3])
    else:
        w2 = time.time()
        t2 = time.perf_counter()
        result = sharin.run(project, options=options)
        t3 = time.perf_counter()
        w3 = time.time()
        first, last = _task_times(project)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {
        "import": t1 - t0,
        "elapsed": t3 - t2,
        "engine_elapsed": result.elapsed,
        "late_imports": sorted({m for m in sys.modules if m.startswith("sharin")} - loaded),
        "maxrss_kb": me.ru_maxrss,
        "cpu_self": me.ru_utime + me.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        "state": result.state,
        "counts": result.counts,
    }
    if len(argv) != 4 and first is not None and last is not None:
        out["before_first"] = first - w2
        out["after_last"] = w3 - last
    print(json.dumps(out))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
