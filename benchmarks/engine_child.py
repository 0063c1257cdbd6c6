"""Run one project with ``sharin.run`` in a process of its own and report time and memory.

    python benchmarks/engine_child.py PROJECT JOBS [PROFILE_OUT]

Prints one JSON line: ``import`` (seconds to import sharin), ``elapsed`` (seconds spent in
``sharin.run``: opening, validating and running the project), ``maxrss_kb`` (peak resident set
of this process alone: ``RUSAGE_SELF`` does not count the task processes), ``cpu_self`` and
``cpu_children`` (user + system CPU seconds of this process, all its threads, and of the task
processes) and ``state``.
With PROFILE_OUT, the run happens under cProfile and the statistics are dumped there.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: python engine_child.py PROJECT JOBS [PROFILE_OUT]", file=sys.stderr)
        return 2
    project, jobs = argv[1], int(argv[2])
    t0 = time.perf_counter()
    import sharin

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
        t2 = time.perf_counter()
        result = sharin.run(project, options=options)
        t3 = time.perf_counter()
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {
        "import": t1 - t0,
        "elapsed": t3 - t2,
        "engine_elapsed": result.elapsed,
        "maxrss_kb": me.ru_maxrss,
        "cpu_self": me.ru_utime + me.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        "state": result.state,
        "counts": result.counts,
    }
    print(json.dumps(out))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
