"""Batch jobs: how many scheduler calls a run of N independent jobs costs.

    python benchmarks/batch.py [-n 100] [--interval 0.5] [--slots 8]

Builds a project of N independent tasks with ``useJobScheduler`` on a host whose scheduler is the
PJM stand-in (``tests/standins/pjm``: real processes, PJM's commands and output formats), runs it
with ``sharin run`` in a fresh process and counts every ``pjsub``, ``pjstat`` and ``pjdel`` call
through a logging wrapper. A tool that polled each job on its own would make about
N × (wall time / interval) status calls; sharin makes one ``pjstat`` for all the jobs of the host
per interval (and one ``pjstat -H`` for the jobs that ended since the last one).
The report (markdown) goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sharin

REPO = Path(__file__).resolve().parent.parent
PJM_BIN = REPO / "tests" / "standins" / "pjm" / "bin"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=100, help="number of jobs (default 100)")
    ap.add_argument("--interval", type=float, default=0.5, help="statusCheckInterval, seconds")
    ap.add_argument("--slots", type=int, default=8, help="jobs the stand-in runs at once")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sharin-batch-"))
    try:
        shims = tmp / "shims"
        shims.mkdir()
        calls = tmp / "calls.log"
        for name in ("pjsub", "pjstat", "pjdel"):
            shim = shims / name
            shim.write_text(
                f'#!/bin/sh\necho {name} "$#" >> "{calls}"\nexec "{PJM_BIN / name}" "$@"\n'
            )
            shim.chmod(0o755)
        config = tmp / "config"
        config.mkdir()
        (config / "remotehost.json").write_text(
            json.dumps(
                [
                    {
                        "name": "pjm",
                        "host": "localhost",
                        "transport": "local",
                        "jobScheduler": "Fugaku",
                        "numJob": args.n,
                        "statusCheckInterval": args.interval,
                    }
                ]
            )
        )
        env = dict(os.environ)
        env.update(
            PATH=f"{shims}:{os.path.dirname(sys.executable)}:{env['PATH']}",
            SHARIN_CONFIG_DIR=str(config),
            PJM_STANDIN_HOME=str(tmp / "pjm"),
            PJM_STANDIN_SLOTS=str(args.slots),
            PJM_STANDIN_START_DELAY="0",
        )
        os.environ["SHARIN_CONFIG_DIR"] = str(config)
        p = sharin.new_project(tmp / "batch")
        with p.batch():
            for i in range(args.n):
                sharin.add_task(p, f"t{i}", "sleep 0.2", host="pjm", useJobScheduler=True)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "sharin", "run", "-q", str(p.root)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            sys.exit(f"sharin run failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        counted: dict[str, int] = {"pjsub": 0, "pjstat": 0, "pjdel": 0}
        most = 0
        for line in calls.read_text().splitlines():
            name, nargs = line.split()
            counted[name] += 1
            if name == "pjstat":
                most = max(most, int(nargs))
        naive = args.n * wall / args.interval
        print(f"## Batch jobs through the PJM stand-in: {args.n} jobs of `sleep 0.2`\n")
        print(
            f"`python benchmarks/batch.py -n {args.n} --interval {args.interval} "
            f"--slots {args.slots}`\n"
        )
        print("| figure | value |")
        print("|---|---|")
        print(f"| wall time of `sharin run` | {wall:.1f} s |")
        print(f"| pjsub calls | {counted['pjsub']} |")
        print(f"| pjstat calls (all jobs of the host in each) | {counted['pjstat']} |")
        print(f"| most arguments in one pjstat call | {most} |")
        print(
            f"| pjstat calls if each job were polled alone (≈ N × wall / interval) | {naive:.0f} |"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
