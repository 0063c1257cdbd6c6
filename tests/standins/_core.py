"""The job-running part the LSF and PBS Pro stand-ins share, and their reading of a script's
directives (see lsf/README.md, pbspro/README.md).

No daemon: the submit command writes a job record and starts one detached runner process per
job. The runner waits for the job's start delay and its dependencies, then runs the job's
elements (one for a plain job, one per index for a job array) at most ``slots`` at a time, each
in its own process group, and records every change under one ``fcntl.flock`` lock. A job is
current or ended at every moment: an element moves from running to ended in one atomic write.

Generic states here: ``queued`` (waiting for its start delay, a dependency or a slot),
``running``, ``ended`` with ``how``: ``exit`` (the script exited, ``ec`` its status or
128 + signal), ``killed`` (cancelled while running; ``sig`` the signal), ``deleted`` (never ran:
cancelled while queued, or its dependency can no longer hold) or ``lost`` (the runner vanished).
The front ends (``lsf/bin/_lsf.py``, ``pbspro/bin/_pbs.py``) turn these into their vendor's words.

Standard library only, Python 3.11.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Job = dict[str, Any]
POLL = 0.1


class Store:
    """The state directory: ``jobs/<id>.json``, ``counter``, ``lock``, ``spool/``, ``log/``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        for d in ("jobs", "spool", "log"):
            (home / d).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.home / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def path(self, jid: int) -> Path:
        return self.home / "jobs" / f"{jid}.json"

    def load(self, jid: int) -> Job | None:
        try:
            with open(self.path(jid), encoding="utf-8") as f:
                return json.load(f)  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError):
            return None

    def save(self, job: Job) -> None:
        path = self.path(job["id"])
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(job, f, sort_keys=True)
        os.replace(tmp, path)

    def all(self) -> list[Job]:
        jobs = []
        for p in (self.home / "jobs").glob("*.json"):
            if p.stem.isdigit():
                j = self.load(int(p.stem))
                if j is not None:
                    jobs.append(j)
        return sorted(jobs, key=lambda j: j["id"])

    def next_id(self) -> int:
        """Under the lock: the counter file is the only source of ids."""
        path = self.home / "counter"
        try:
            n = int(path.read_text().strip() or "0")
        except FileNotFoundError:
            n = int(os.environ.get("STANDIN_FIRST_ID", "100")) - 1
        n += 1
        tmp = path.with_name(f".counter.{os.getpid()}.tmp")
        tmp.write_text(f"{n}\n")
        os.replace(tmp, path)
        return n


def new_element(index: int | None, env: dict[str, str], out: str | None, err: str | None) -> Job:
    return {
        "index": index,
        "env": env,
        "out": out,
        "err": err,
        "st": "queued",
        "how": None,
        "ec": None,
        "sig": None,
        "start": None,
        "end": None,
        "pid": None,
        "cancel": False,
    }


def ended(job: Job) -> bool:
    return all(e["st"] == "ended" for e in job["elements"])


def succeeded(job: Job) -> bool:
    return all(e["how"] == "exit" and e["ec"] == 0 for e in job["elements"])


def dependency_state(store: Store, deps: list[list[Any]], *, any_after_deleted: bool = True) -> str:
    """``wait``, ``go`` or ``never`` for (kind, job id) pairs that must all hold; ``any``
    holds after a job that was deleted without running only with ``any_after_deleted``."""
    state = "go"
    for kind, jid in deps:
        job = store.load(int(jid))
        if job is None or not ended(job):
            state = "wait" if job is not None else "never"
            if state == "never":
                return state
            continue
        ok = succeeded(job)
        if (kind == "ok" and not ok) or (kind == "notok" and ok):
            return "never"
        never_ran = all(e["how"] == "deleted" for e in job["elements"])
        if kind == "any" and never_ran and not any_after_deleted:
            return "never"
    return state


def finish(e: Job, how: str, ec: int | None = None, sig: int | None = None) -> None:
    e.update(st="ended", how=how, ec=ec, sig=sig, end=time.time(), pid=None)


def directives(text: str, prefix: str) -> list[str]:
    """The ``prefix`` lines (``#BSUB``, ``#PBS``) of a script's leading comment block, as one
    argument list."""
    out: list[str] = []
    for n, line in enumerate(text.splitlines()):
        s = line.strip()
        if n == 0 and s.startswith("#!") or not s:
            continue
        if s.startswith(prefix):
            out += shlex.split(s[len(prefix) :], comments=True)
        elif not s.startswith("#"):
            break
    return out


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(store: Store) -> None:
    """Under the lock: the elements of a job whose runner died without recording their end."""
    for job in store.all():
        if ended(job) or pid_alive(job.get("runner_pid")):
            continue
        for e in job["elements"]:
            if e["st"] != "ended":
                if e.get("pgid"):
                    with contextlib.suppress(OSError):
                        os.killpg(e["pgid"], signal.SIGKILL)
                finish(e, "lost")
        store.save(job)


def submit(store: Store, job: Job) -> None:
    """Under the lock: save the new job and start its runner."""
    store.save(job)
    log = open(store.home / "log" / f"runner-{job['id']}.log", "ab")  # noqa: SIM115
    try:
        p = subprocess.Popen(
            [sys.executable, "-B", os.path.abspath(__file__), str(store.home), str(job["id"])],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    finally:
        log.close()
    job["runner_pid"] = p.pid
    store.save(job)


def cancel(store: Store, job: Job, indices: set[int | None] | None = None) -> list[Job]:
    """Under the lock: ask for the end of the job's elements (all, or those in ``indices``);
    queued ones are deleted at once. Returns the elements that had not ended."""
    hit = []
    for e in job["elements"]:
        if e["st"] == "ended" or (indices is not None and e["index"] not in indices):
            continue
        hit.append(e)
        if e["st"] == "queued":
            finish(e, "deleted")
        else:
            e["cancel"] = True
    store.save(job)
    return hit


def _argv(script: str) -> list[str]:
    with open(script, "rb") as f:
        first = f.readline().decode("utf-8", errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].strip().split(None, 1)
        if parts:
            return [parts[0], *parts[1:], script]
    return ["/bin/sh", script]


def _open(path: str | None, mode: str) -> Any:
    if path is None:
        return subprocess.DEVNULL
    return open(path, mode)  # noqa: SIM115 - handed to the child


def _start(job: Job, e: Job) -> subprocess.Popen[bytes] | None:
    out = _open(e["out"], "ab")
    err = subprocess.STDOUT if e["err"] == e["out"] and e["out"] else _open(e["err"], "ab")
    try:
        p = subprocess.Popen(
            _argv(job["script"]),
            cwd=job["cwd"],
            env=e["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    except OSError:
        finish(e, "exit", 127)
        return None
    finally:
        for f in (out, err):
            if hasattr(f, "close"):
                f.close()
    e.update(st="running", start=time.time(), pid=p.pid, pgid=p.pid)
    return p


def runner_main(home: Path, jid: int) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    store = Store(home)
    procs: dict[int, subprocess.Popen[bytes]] = {}  # element position -> process
    term_at: dict[int, float] = {}
    while True:
        time.sleep(POLL)
        job = store.load(jid)
        if job is None:
            return 1
        early = time.time() < job["accept"] + job.get("start_delay", 0.0)
        with store.locked():
            job = store.load(jid)
            assert job is not None
            changed = False
            for pos, p in list(procs.items()):
                rc = p.poll()
                e = job["elements"][pos]
                if rc is None:
                    if e["cancel"] and pos not in term_at:
                        with contextlib.suppress(OSError):
                            os.killpg(p.pid, signal.SIGTERM)
                        term_at[pos] = time.time()
                    elif pos in term_at and time.time() > term_at[pos] + job.get("grace", 1.0):
                        with contextlib.suppress(OSError):
                            os.killpg(p.pid, signal.SIGKILL)
                    continue
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGKILL)  # what the script left behind
                del procs[pos]
                sig = -rc if rc < 0 else None
                ec = 128 + sig if sig is not None else rc
                finish(e, "killed" if e["cancel"] else "exit", ec, sig)
                changed = True
            waiting = [(pos, e) for pos, e in enumerate(job["elements"]) if e["st"] == "queued"]
            if waiting and not early:
                gate = dependency_state(
                    store, job.get("deps", []), any_after_deleted=job.get("any_after_deleted", True)
                )
                if gate == "never" and job.get("delete_orphans"):
                    for _, e in waiting:
                        finish(e, "deleted")
                        e["why"] = "dependency"
                    changed = True
                elif gate == "go":
                    for pos, e in waiting:
                        if len(procs) >= job.get("slots", 4):
                            break
                        p = _start(job, e)
                        if p is not None:
                            procs[pos] = p
                        changed = True
            if changed:
                store.save(job)
            if ended(job):
                return 0


if __name__ == "__main__":
    sys.exit(runner_main(Path(sys.argv[1]), int(sys.argv[2])))
