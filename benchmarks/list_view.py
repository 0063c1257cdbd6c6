"""The list view's rows: ``GET /api/projects/{id}/tasks`` for a study of N instances (10,000).

    python benchmarks/list_view.py [--instances N] [--repeat R] [--workdir DIR] [--keep]

Builds the project of ``benchmarks/paramstudy.py`` (one ``parameterStudy`` over 1..N holding one
task), runs it with ``sharin run``, then measures what the list view costs once the run is over:

* through the server of ``sharin ui``: the wall time of each request (urllib, one connection per
  request) and the server's CPU time for it (utime + stime of ``/proc/<pid>/stat`` before and
  after), after one request that reads the project (as any view does first);
* in this process: :func:`sharin.interfaces.server._tasks.task_rows` and its JSON encoding
  (msgspec, as the endpoint does), on this thread's CPU clock.

The floor, in the same run: the journal's own part of the same work, done the least way there
is: the last run's records read in one query (``Journal.task_list``) and encoded as plain rows
(each record's fields by name), with no join to the project's components. What ``task_rows``
costs beyond it is the join (each key's component, trip and parent row) and the rows of
components no record stands for.

Each figure is the median of R requests (default 7). Targets: 10,000 instances' list ≤ 1 s of
wall time through the server, and ``task_rows`` ≤ 3× the floor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paramstudy import build  # noqa: E402
from web import _cpu, ui_server  # noqa: E402


def _floor(root: Path) -> tuple[float, int]:
    """The journal's part alone (see the module's docstring): CPU seconds, rows."""
    import msgspec

    from sharin.engine import Journal
    from sharin.engine._layout import RunLayout

    cpu = time.thread_time()
    journal = Journal.open_readonly(RunLayout(root).journal)
    try:
        rec = journal.last_run()
        assert rec is not None
        records = journal.task_list(rec.id)
    finally:
        journal.close()
    names = ("key", "kind", "state", "attempt", "handle", "rc", "started", "ended", "message")
    body = msgspec.json.encode(
        {"rows": [{n: getattr(t, n) for n in names} for t in records if t.key]}
    )
    cpu = time.thread_time() - cpu
    assert body
    return cpu, len(records) - 1


def _rows(root: Path) -> tuple[float, int]:
    """``task_rows`` and its encoding, the project read once before (CPU seconds, rows)."""
    import msgspec

    import sharin
    from sharin.interfaces.server._tasks import task_rows

    project = sharin.open_project(root)
    cpu = time.thread_time()
    body = msgspec.json.encode(task_rows(project))
    cpu = time.thread_time() - cpu
    return cpu, len(msgspec.json.decode(body)["rows"])


def _served(ws: Path, repeat: int) -> tuple[list[float], list[float], int]:
    """Wall and server CPU seconds of ``repeat`` requests after a first one, and its rows."""
    with ui_server(ws) as (server, base, token):

        def get(path: str) -> Any:
            req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read())

        pid = get("/api/projects")[0]["id"]
        rows = len(get(f"/api/projects/{pid}/tasks")["rows"])  # the project read once
        walls, cpus = [], []
        for _ in range(repeat):
            c0, t0 = _cpu(server.pid), time.perf_counter()
            got = get(f"/api/projects/{pid}/tasks")
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu(server.pid) - c0)
            assert len(got["rows"]) == rows
        return walls, cpus, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--workdir", type=Path, help="where the project is built (default: a tmp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the project when done")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sharin-list-", dir=a.workdir))
    ws = tmp / "ws"
    ws.mkdir()
    print(f"[list] building and running a study of {a.instances} instances in {tmp}", flush=True)
    root = build(ws, a.instances)
    subprocess.run(
        [sys.executable, "-m", "sharin", "run", str(root)], check=True, stdout=subprocess.DEVNULL
    )

    floors, rows_cpu = [], []
    n_floor = n_rows = 0
    for _ in range(a.repeat):  # alternated, so that both see the same state of the machine
        cpu, n_floor = _floor(root)
        floors.append(cpu)
        cpu, n_rows = _rows(root)
        rows_cpu.append(cpu)
    walls, cpus, n_served = _served(ws, a.repeat)
    assert n_served == n_rows, (n_served, n_rows)
    if not a.keep:
        shutil.rmtree(tmp)

    med = statistics.median
    floor, rows = med(floors), med(rows_cpu)
    wall = med(walls)
    print(f"\n`python benchmarks/list_view.py --instances {a.instances} --repeat {a.repeat}`\n")
    print(f"| figure (median of {a.repeat}) | sharin | floor |")
    print("|---|---|---|")
    print(
        f"| `task_rows` + JSON, CPU ({n_rows} rows; floor: {n_floor} records) "
        f"| {rows * 1000:.0f} ms | {floor * 1000:.0f} ms ({rows / floor:.1f}×) |"
    )
    print(f"| `GET …/tasks` through `sharin ui`: wall | {wall * 1000:.0f} ms | |")
    print(f"| `GET …/tasks`: the server's CPU | {med(cpus) * 1000:.0f} ms | |")
    ok_wall, ok_ratio = wall <= 1.0, rows <= 3 * floor
    print(
        f"\ntargets (set for 10,000 instances): wall ≤ 1 s {'PASS' if ok_wall else 'MISS'}; "
        f"task_rows ≤ 3× the floor {'PASS' if ok_ratio else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
