"""Remote tasks over SSH: what a run costs in connections and scheduler queries, and per task.

    python benchmarks/remote.py [--jobs 200] [--interval 2] [--chain 20] [--repeat 3]
                                [--only counts,overhead]

Needs the test services (``scripts/services/up.sh``: the SSH host ``10.200.0.2`` in its network
namespace, reaching the same Slurm); run as root with ``source scripts/services/env.sh`` done.

``counts``: ``--jobs`` independent tasks, each a Slurm job on the SSH host, in one run. The host
is reached with a key of the benchmark's own whose logins run every command with logging
wrappers of ``sbatch``/``squeue``/``sacct`` first on the ``PATH`` (``tests/remote/watched.py``),
and the sshd's log gives that key's logins: SSH connections, exec requests (channels),
``squeue``/``sacct`` calls and the executor's own query counter, against the number of poll
intervals the run lasted (goal: 1 connection, at most 1 status query per interval).

``overhead``: the cost of one task, each mode a function of ``MODES`` timing ``--chain`` tasks run
one after another (so nothing overlaps), wall and CPU of this process per task:

- ``ssh-channel``: ``true`` in a new channel of the one open asyncssh connection (sharin's pool)
- ``ssh-mux``: ``ssh host true`` through an OpenSSH ControlMaster connection (the same connection
  for every call: the bare ``ssh host cmd`` a user types)
- ``sbatch-loop``: a bare Slurm job over that connection: ``sbatch`` then ``squeue`` every
  ``--chain-interval`` seconds until it left the queue (one ``ssh`` command per job)
- ``batch-task``: a chain of sharin tasks, each a Slurm job on the SSH host (staged in, submitted,
  watched at ``--chain-interval``, outputs and logs copied back)
- ``shell-task``: a chain of sharin tasks on the SSH host without a job scheduler (a remote
  shell): reported as not available while this version refuses such tasks; it is measured as
  soon as the executor for them exists, with no change here

The report (markdown) goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sharin  # noqa: E402
from sharin import model  # noqa: E402
from sharin.executors import BatchExecutor, ExecutorRegistry, load_schedulers  # noqa: E402
from sharin.executors._ssh import SSHPool, SSHTransport  # noqa: E402
from tests.remote.watched import WatchedHost  # noqa: E402
from tests.services.available import service_env  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (the ``ssh`` clients)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class NotAvailable(Exception):
    """A mode this version of sharin cannot run (the reason is reported)."""


# ------------------------------------------------------------------ counts
def counts(work: Path, jobs: int, interval: float) -> list[str]:
    config = work / "config-counts"
    config.mkdir()
    os.environ["SHARIN_CONFIG_DIR"] = str(config)
    (work / "counts-key").mkdir()
    host = WatchedHost(work / "counts-key", config)
    try:
        host.write_config(statusCheckInterval=interval, numJob=jobs)
        p = sharin.new_project(work / "counts")
        with p.batch():
            for i in range(jobs):
                sharin.add_task(
                    p,
                    f"t{i:03d}",
                    'echo "$SLURM_JOB_ID" > out.txt',
                    host=host.name,
                    useJobScheduler=True,
                    submitOption=f"-J {host.prefix}-t{i:03d} -o /dev/null",
                    outputFiles=[{"name": "out.txt", "dst": []}],
                )
        registry = ExecutorRegistry(model.load_hosts(), schedulers=load_schedulers())
        t0, c0 = time.monotonic(), _cpu()
        result = sharin.run(p.root, executors=registry)
        wall, cpu = time.monotonic() - t0, _cpu() - c0
        if result.state != "finished":
            sys.exit(f"the run failed: {result.failed[:3]}")
        ex = registry.executor_for(host.name, True)
        assert isinstance(ex, BatchExecutor)
        squeue, sacct = host.calls("squeue"), host.calls("sacct")
        most = max(len(x.split()[-1].split(",")) for x in host.call_lines("squeue"))
        gaps = [b - a for a, b in zip(squeue, squeue[1:], strict=False)]
        return [
            f"### {jobs} Slurm jobs on one SSH host, statusCheckInterval {interval:g} s\n",
            "| figure | value |",
            "|---|---|",
            f"| wall time of the run (CPU of the engine) | {wall:.1f} s ({cpu:.1f} s) |",
            f"| poll intervals in that time | {wall / interval:.1f} |",
            f"| SSH connections (logins in the sshd's log) | {host.logins()} |",
            f"| exec requests (channels) | {len(host.calls('exec'))} "
            f"({len(host.calls('exec')) / jobs:.1f} per task; SFTP sessions not counted) |",
            f"| sbatch calls | {len(host.calls('sbatch'))} |",
            f"| squeue calls (status queries) | {len(squeue)} |",
            f"| shortest time between two squeue calls | {min(gaps, default=0):.2f} s |",
            f"| most job ids in one squeue call | {most} |",
            f"| sacct calls (history of the jobs that left the queue) | {len(sacct)} |",
            f"| executor's query counter (squeue + sacct) | {ex.queries} |",
            f"| status queries if each job were polled alone (≈ N × wall / interval) | "
            f"{jobs * wall / interval:.0f} |",
            "",
        ]
    finally:
        host.cleanup()


# ------------------------------------------------------------------ per-task modes
class Bench:
    def __init__(self, work: Path, chain: int, interval: float) -> None:
        self.work, self.chain, self.interval = work, chain, interval
        env = service_env()
        self.env = env
        self.host_entry = {
            "name": "bench-ssh",
            "host": env["TEST_SSH_HOST"],
            "port": int(env["TEST_SSH_PORT"]),
            "username": env["TEST_SSH_USER"],
            "keyFile": env["TEST_SSH_KEY"],
            "knownHostsFile": env["TEST_SSH_KNOWN_HOSTS"],
            "path": f"{env['TEST_SERVICES_DIR']}/home/{env['TEST_SSH_USER']}/bench-{os.getpid()}",
            "jobScheduler": "SLURM",
            "statusCheckInterval": interval,
        }
        self.config = work / "config-overhead"
        self.config.mkdir(exist_ok=True)
        (self.config / "remotehost.json").write_text(json.dumps([self.host_entry]))
        self.mux = work / "mux"
        self.runs = 0
        self._inner = 0.0  #: the last mode's wall time, set-up excluded

    def ssh_argv(self, *command: str) -> list[str]:
        e = self.env
        return [
            "ssh",
            "-i",
            e["TEST_SSH_KEY"],
            "-o",
            f"UserKnownHostsFile={e['TEST_SSH_KNOWN_HOSTS']}",
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.mux}",
            "-o",
            "ControlPersist=120",
            f"{e['TEST_SSH_USER']}@{e['TEST_SSH_HOST']}",
            *command,
        ]

    # each mode: run ``chain`` tasks one after another; returns nothing, raises NotAvailable
    def ssh_channel(self) -> None:
        cfg = model.load_hosts()["bench-ssh"]
        pool = SSHPool()
        t = SSHTransport(cfg, pool=pool)

        async def go() -> None:
            await t.run("true")  # the connection is open before the clock starts
            started = time.monotonic()
            for _ in range(self.chain):
                await t.run("true")
            self._inner = time.monotonic() - started
            await pool.close()

        asyncio.run(go())

    def ssh_mux(self) -> None:
        subprocess.run(self.ssh_argv("true"), check=True)  # the master connection
        started = time.monotonic()
        for _ in range(self.chain):
            subprocess.run(self.ssh_argv("true"), check=True)
        self._inner = time.monotonic() - started

    def sbatch_loop(self) -> None:
        subprocess.run(self.ssh_argv("true"), check=True)
        d = self.host_entry["path"]
        loop = (
            f"mkdir -p {d} && cd {d} && j=$(sbatch --parsable -J bench-{os.getpid()} "
            f"-o /dev/null --wrap true) && while squeue -h -j $j -t PD,R,CG,CF -o %i "
            f"| grep -q .; do sleep {self.interval:g}; done"
        )
        started = time.monotonic()
        for _ in range(self.chain):
            subprocess.run(self.ssh_argv(loop), check=True)
        self._inner = time.monotonic() - started

    def _chain_project(self, use_job_scheduler: bool) -> Path:
        self.runs += 1
        p = sharin.new_project(self.work / f"chain{self.runs}")
        with p.batch():
            names = [f"t{i:03d}" for i in range(self.chain)]
            for name in names:
                sharin.add_task(
                    p,
                    name,
                    "echo $SLURM_JOB_ID > out.txt",
                    host="bench-ssh",
                    useJobScheduler=use_job_scheduler,
                    submitOption=f"-J bench-{os.getpid()} -o /dev/null",
                    outputFiles=[{"name": "out.txt", "dst": []}],
                )
            for a, b in zip(names, names[1:], strict=False):
                sharin.connect(p, a, b)
        problems = sharin.validate(sharin.open_project(p.root))
        if problems:
            raise NotAvailable(problems[0].message)
        return p.root

    def _run_chain(self, root: Path) -> None:
        started = time.monotonic()
        result = sharin.run(root)
        self._inner = time.monotonic() - started
        if result.state != "finished":
            sys.exit(f"the chain failed: {result.failed[:3]}")

    def batch_task(self) -> None:
        self._run_chain(self._chain_project(True))

    def shell_task(self) -> None:
        self._run_chain(self._chain_project(False))

    def time(self, mode: Callable[[], None]) -> tuple[float, float]:
        """(wall, CPU of this process) per task, the set-up of a chain not counted in wall."""
        c0 = _cpu()
        mode()
        return self._inner / self.chain, (_cpu() - c0) / self.chain


MODES: dict[str, Callable[[Bench], None]] = {
    "ssh-channel": Bench.ssh_channel,
    "ssh-mux": Bench.ssh_mux,
    "sbatch-loop": Bench.sbatch_loop,
    "batch-task": Bench.batch_task,
    "shell-task": Bench.shell_task,
}


def overhead(work: Path, chain: int, interval: float, repeat: int) -> list[str]:
    b = Bench(work, chain, interval)
    os.environ["SHARIN_CONFIG_DIR"] = str(b.config)
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    skipped: dict[str, str] = {}
    try:
        for _ in range(repeat):  # interleaved, so that load changes touch every mode alike
            for name, mode in MODES.items():
                if name in skipped:
                    continue
                try:
                    times[name].append(b.time(functools.partial(mode, b)))
                except NotAvailable as e:
                    skipped[name] = str(e)
    finally:
        subprocess.run([*b.ssh_argv("rm", "-rf", str(b.host_entry["path"]))], check=False)
        subprocess.run(
            ["ssh", "-o", f"ControlPath={b.mux}", "-O", "exit", "x"],
            check=False,
            capture_output=True,
        )
    lines = [
        f"### One task after another: {chain} per mode, {repeat} interleaved rounds, "
        f"poll interval {interval:g} s\n",
        "| mode | wall per task, median (min) | CPU per task (this process and its ssh clients) |",
        "|---|---:|---:|",
    ]
    for name in MODES:
        if name in skipped:
            lines.append(f"| {name} | not available: {skipped[name]} | |")
            continue
        walls = [w for w, _ in times[name]]
        cpus = [c for _, c in times[name]]
        lines.append(
            f"| {name} | {statistics.median(walls) * 1000:.0f} ms ({min(walls) * 1000:.0f}) "
            f"| {statistics.median(cpus) * 1000:.0f} ms |"
        )
    if times["batch-task"] and times["sbatch-loop"]:
        extra = statistics.median(w for w, _ in times["batch-task"]) - statistics.median(
            w for w, _ in times["sbatch-loop"]
        )
        lines.append(f"\nbatch-task − sbatch-loop: {extra * 1000:.0f} ms per task")
    lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200, help="jobs of the counts run (200)")
    ap.add_argument("--interval", type=float, default=2.0, help="its statusCheckInterval (2 s)")
    ap.add_argument("--chain", type=int, default=20, help="tasks per overhead mode (20)")
    ap.add_argument("--chain-interval", type=float, default=0.5, help="their poll interval")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds of the modes")
    ap.add_argument("--only", default="counts,overhead", help="counts, overhead or both")
    args = ap.parse_args()
    if os.geteuid() != 0 or "TEST_SSH_HOST" not in os.environ:
        sys.exit("run as root after `source scripts/services/env.sh` (the test services)")
    only = set(args.only.split(","))
    out: list[str] = [
        f"## Remote tasks over SSH (`python benchmarks/remote.py {' '.join(sys.argv[1:])}`)\n"
    ]
    with tempfile.TemporaryDirectory(prefix="sharin-remote-") as d:
        work = Path(d)
        if "counts" in only:
            out += counts(work, args.jobs, args.interval)
        if "overhead" in only:
            out += overhead(work, args.chain, args.chain_interval, args.repeat)
    print("\n".join(out))


if __name__ == "__main__":
    main()
