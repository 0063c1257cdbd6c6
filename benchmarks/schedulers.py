"""Status outputs of 10,000 jobs read by each shipped scheduler definition.

    python benchmarks/schedulers.py [-n 10000] [--repeat 7]

For every scheduler, builds the output its status command (and history command) prints for N
jobs (a mix of queued, running and ended ones, in the vendor's format), then times
``SchedulerDefinition.parse_status`` reading it for all N ids: the one read a poll makes. Beside
it stands a floor measured on the same text: ``str.split`` of every line (what any reader must at
least do). The previous reading (one regular expression compiled and run over the whole output
per job) is timed on 1,000 jobs for the PJM definition, for comparison. Times are CPU time of
this process (``time.process_time``), median and minimum of the repeats. The report (markdown)
goes to stdout.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sharin.executors import load_schedulers  # noqa: E402

TARGET_MS = 50.0


def slurm_squeue(ids: list[str]) -> str:
    words = ("RUNNING", "PENDING", "COMPLETED", "FAILED")
    return "".join(f"{j}|{words[k % 4]}\n" for k, j in enumerate(ids))


def slurm_sacct(ids: list[str]) -> str:
    out = []
    for k, j in enumerate(ids):
        state, code = ("COMPLETED", "0:0") if k % 3 else ("FAILED", "3:0")
        out.append(f"{j}|{state}|{code}\n{j}.batch|{state}|{code}\n{j}.extern|COMPLETED|0:0\n")
    return "".join(out)


def pbs_qstat(ids: list[str]) -> str:
    out = []
    for k, j in enumerate(ids):
        state = "QRF"[k % 3]
        end = f"    Exit_status = {k % 2}\n    substate = 92\n" if state == "F" else ""
        out.append(
            f"Job Id: {j}.pbsserver\n    Job_Name = run.sh\n    Job_Owner = u@login\n"
            f"    job_state = {state}\n    queue = workq\n{end}"
            "    Variable_List = PBS_O_HOME=/home/u,PBS_O_LANG=C.UTF-8,\n"
            "\tPBS_O_WORKDIR=/home/u/t\n\n"
        )
    return "".join(out)


def sge_qstat(ids: list[str]) -> str:
    head = "job-ID  prior   name       user         state submit/start at     queue   slots\n"
    rows = "".join(
        f"{j:>7} 0.55500 run.sh     u            {('r', 'qw')[k % 2]:<5} "
        "12/01/2026 10:00:00 all.q@node1 1\n"
        for k, j in enumerate(ids)
    )
    return head + "-" * 100 + "\n" + rows


def sge_qacct(ids: list[str]) -> str:
    return "".join(
        f"{'=' * 62}\nqname        all.q\nhostname     node1\nowner        u\n"
        f"jobname      run.sh\njobnumber    {j}\ntaskid       undefined\n"
        f"failed       0\nexit_status  {k % 2}\nru_wallclock 1s\n"
        for k, j in enumerate(ids)
    )


def lsf_bjobs(ids: list[str]) -> str:
    rows = ("RUN -", "PEND -", "DONE -", "EXIT 3")
    return "".join(f"{j} {rows[k % 4]}\n" for k, j in enumerate(ids))


def pjm_stat(ids: list[str]) -> str:
    return "JOB_ID ST\n" + "".join(f"{j} {('RUN', 'QUE')[k % 2]}\n" for k, j in enumerate(ids))


def pjm_after(ids: list[str]) -> str:
    return "JOB_ID ST EC PC\n" + "".join(f"{j} EXT {k % 2} 0\n" for k, j in enumerate(ids))


CASES: list[tuple[str, str, Callable[[list[str]], str], bool]] = [
    ("SLURM", "squeue", slurm_squeue, False),
    ("SLURM", "sacct (history)", slurm_sacct, True),
    ("PBSPro", "qstat -x -f", pbs_qstat, False),
    ("SGE", "qstat", sge_qstat, False),
    ("SGE", "qacct -j (history)", sge_qacct, True),
    ("LSF", "bjobs -a", lsf_bjobs, False),
    ("Fugaku", "pjstat", pjm_stat, False),
    ("Fugaku", "pjstat -H (history)", pjm_after, True),
    ("TCS", "pjstat -H", pjm_after, False),
]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        runs.append((time.process_time() - t) * 1000)
    return statistics.median(runs), min(runs)


def floor(text: str) -> None:
    for line in text.splitlines():
        line.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000, help="jobs in each output (default 10000)")
    ap.add_argument("--repeat", type=int, default=7, help="timed reads of each (default 7)")
    args = ap.parse_args()
    defs = load_schedulers()
    ids = [str(7_000_000 + k) for k in range(args.n)]

    print(f"# Scheduler status outputs of {args.n:,} jobs, read once\n")
    print(f"`python benchmarks/schedulers.py -n {args.n} --repeat {args.repeat}`; ", end="")
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}")
    print("CPU ms, median (min) of the repeats; target: parse ≤ 50 ms.\n")
    print("| scheduler | output | KiB | parse_status | floor: split lines | ÷ floor | target |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, label, make, after in CASES:
        d = defs[name]
        text = make(ids)
        table = d.parse_status(text, ids, after=after)
        assert len(table) == args.n, (name, label, len(table))
        med, low = timed(functools.partial(d.parse_status, text, ids, after=after), args.repeat)
        fmed, flow = timed(functools.partial(floor, text), args.repeat)
        verdict = "PASS" if med <= TARGET_MS else "MISS"
        print(
            f"| {name} | {label} | {len(text) / 1024:,.0f} | {med:.1f} ({low:.1f}) | "
            f"{fmed:.1f} ({flow:.1f}) | {med / max(fmed, 0.001):.1f} | {verdict} |"
        )

    n_old = min(1000, args.n)
    fugaku = defs["Fugaku"]
    text = pjm_stat(ids[:n_old])
    med, low = timed(lambda: [fugaku.is_running(text, j) for j in ids[:n_old]], 3)
    new, _ = timed(lambda: fugaku.parse_status(text, ids[:n_old]), args.repeat)
    print(
        f"\nPrevious reading (a regular expression per job over the whole output), Fugaku "
        f"pjstat, {n_old:,} jobs: {med:.0f} ms ({low:.0f}); one read of the same output: "
        f"{new:.1f} ms."
    )


if __name__ == "__main__":
    main()
