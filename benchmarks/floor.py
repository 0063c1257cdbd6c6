"""The asyncio floor: the least a Python runner must do to run the same scripts in the same order.

Each task is ``asyncio.create_subprocess_exec(<dir>/run.sh, cwd=<dir>)``; ``jobs`` worker
coroutines take tasks from a ready queue, and a task becomes ready when all its dependencies have
finished. No journal, no state files, no logs (output goes to /dev/null).

Standard library only, so that ``python floor.py SPEC`` pays nothing but Python's own start-up.
Usable as a module (:func:`run_dag`) or as a program::

    python benchmarks/floor.py SPEC.json
    # prints {"elapsed": s, "maxrss_kb": kB, "cpu_self": s, "cpu_children": s, "failed": n}

SPEC.json: ``{"jobs": 2, "root": DIR, "script": "run.sh",
"nodes": [{"name": "t0", "deps": []}, ...]}``; task ``name`` runs in ``DIR/name``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Node:
    name: str
    deps: tuple[str, ...] = field(default_factory=tuple)


async def run_dag(root: Path, nodes: Sequence[Node], jobs: int, script: str = "run.sh") -> int:
    """Run every node's script once its dependencies ended; returns the number that failed."""
    waiting = {n.name: len(n.deps) for n in nodes}
    successors: dict[str, list[str]] = {n.name: [] for n in nodes}
    for n in nodes:
        for d in n.deps:
            successors[d].append(n.name)
    ready: asyncio.Queue[str | None] = asyncio.Queue()
    for n in nodes:
        if not n.deps:
            ready.put_nowait(n.name)
    remaining = len(nodes)
    failed = 0

    async def worker() -> None:
        nonlocal remaining, failed
        while True:
            name = await ready.get()
            if name is None:
                return
            cwd = root / name
            proc = await asyncio.create_subprocess_exec(
                str(cwd / script),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            remaining -= 1
            if await proc.wait() != 0:
                failed += 1  # like sharin's default: start nothing new after a failure
                remaining = 0
            else:
                for s in successors[name]:
                    waiting[s] -= 1
                    if waiting[s] == 0:
                        ready.put_nowait(s)
            if remaining == 0:
                for _ in range(jobs):
                    ready.put_nowait(None)

    if not nodes:
        return 0
    await asyncio.gather(*(worker() for _ in range(jobs)))
    return failed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python floor.py SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    nodes = [Node(n["name"], tuple(n.get("deps", ()))) for n in spec["nodes"]]
    t0 = time.perf_counter()
    failed = asyncio.run(run_dag(Path(spec["root"]), nodes, int(spec["jobs"]), spec["script"]))
    elapsed = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {
        "elapsed": elapsed,
        "maxrss_kb": me.ru_maxrss,
        "cpu_self": me.ru_utime + me.ru_stime,
        "cpu_children": kids.ru_utime + kids.ru_stime,
        "failed": failed,
    }
    print(json.dumps(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
