"""A stand-in for IBM Spectrum LSF's bsub / bjobs / bkill / bhist that runs jobs on this machine.

NOT IBM's software: a test double that prints LSF's documented formats (see ../README.md for
the sources and every choice made where the documents say nothing). Jobs are run by the shared
runner of ``tests/standins/_core.py``. Standard library only, Python 3.11.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from _core import Job, Store, cancel, directives, new_element, reap, submit

MAX_ARRAY_INDEX = 1000  # LSF's default MAX_JOB_ARRAY_SIZE
_VALUE = {
    "-J",
    "-q",
    "-o",
    "-oo",
    "-e",
    "-eo",
    "-n",
    "-W",
    "-M",
    "-R",
    "-w",
    "-cwd",
    "-P",
    "-G",
    "-u",
    "-m",
    "-app",
    "-E",
    "-L",
    "-We",
    "-g",
    "-sla",
    "-C",
    "-S",
    "-F",
    "-D",
}
_FLAG = {"-ti", "-x", "-N", "-B", "-r", "-rn", "-H"}
_DEPENDENCY = re.compile(r"\s*(done|ended|exit|)\(?\s*(\d+)\s*\)?\s*")
_FIELDS = {  # bjobs -o field: (header, default width)
    "jobid": ("JOBID", 7),
    "jobindex": ("JOBINDEX", 8),
    "stat": ("STAT", 5),
    "exit_code": ("EXIT_CODE", 9),
    "job_name": ("JOB_NAME", 10),
    "name": ("JOB_NAME", 10),
    "queue": ("QUEUE", 10),
    "user": ("USER", 7),
    "from_host": ("FROM_HOST", 11),
    "exec_host": ("EXEC_HOST", 11),
    "submit_time": ("SUBMIT_TIME", 15),
    "start_time": ("START_TIME", 15),
    "finish_time": ("FINISH_TIME", 15),
}
_DEFAULT = ["jobid", "user", "stat", "queue", "from_host", "exec_host", "job_name", "submit_time"]


class Refused(Exception):
    pass


def store() -> Store:
    home = os.environ.get("LSF_STANDIN_HOME") or os.path.expanduser("~/.lsf-standin")
    return Store(Path(home))


def main(command: str, argv: list[str]) -> int:
    try:
        return {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "bhist": bhist}[command](argv)
    except Refused as e:
        print(str(e), file=sys.stderr)
        return 255


# ------------------------------------------------------------------------------------ bsub
def _options(args: list[str], *, directive: bool = False) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a in _FLAG:
            opts[a] = True
        elif a in _VALUE:
            if i + 1 >= len(args):
                raise Refused(f"{a}: option requires an argument. Job not submitted.")
            opts[a] = args[i + 1]
            i += 1
        elif a.startswith("-") and not directive:
            raise Refused(f"{a}: Illegal option. Job not submitted.")
        elif a.startswith("-"):
            raise Refused(f"#BSUB {a}: Illegal option. Job not submitted.")
        else:
            return opts, args[i:]
        i += 1
    return opts, []


def _indices(spec: str) -> list[int]:
    """``1-10``, ``1-10:2``, ``1,3,5-7`` (a ``%limit`` after the bracket is ignored)."""
    out: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if m is None:
            raise Refused("Bad job name. Job not submitted.")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        step = int(m.group(3) or 1)
        if lo < 1 or hi < lo or hi > MAX_ARRAY_INDEX or step < 1:
            raise Refused("Bad job name. Job not submitted.")
        out += range(lo, hi + 1, step)
    return sorted(set(out))


def _dependencies(s: Store, expression: str) -> list[list[Any]]:
    deps: list[list[Any]] = []
    for term in expression.split("&&"):
        m = _DEPENDENCY.fullmatch(term)
        if m is None:
            raise Refused(f"{expression}: Dependency condition syntax error. Job not submitted.")
        kind = {"done": "ok", "": "ok", "exit": "notok", "ended": "any"}[m.group(1)]
        if s.load(int(m.group(2))) is None:
            raise Refused(f"{term.strip()}: No matching job found. Job not submitted.")
        deps.append([kind, int(m.group(2))])
    return deps


def bsub(argv: list[str]) -> int:
    cli, command = _options(argv)
    if command:
        text = "#!/bin/sh\n" + " ".join(shlex.quote(x) for x in command) + "\n"
    else:
        text = sys.stdin.read()
    opts = {**_options(directives(text, "#BSUB"), directive=True)[0], **cli}
    name = str(opts.get("-J") or (command[0] if command else "NONAME"))
    indices: list[int] | None = None
    m = re.fullmatch(r"([^\[\]]*)\[([^\]]*)\](?:%\d+)?", name)
    if m is not None:
        name, indices = m.group(1), _indices(m.group(2))
    elif "[" in name or "]" in name:
        raise Refused("Bad job name. Job not submitted.")
    queue = str(opts.get("-q") or "normal")
    cwd = os.path.abspath(str(opts.get("-cwd") or os.getcwd()))
    s = store()
    with s.locked():
        reap(s)
        deps = _dependencies(s, str(opts["-w"])) if "-w" in opts else []
        jid = s.next_id()
        spooled = s.home / "spool" / f"{jid}.script"
        spooled.write_text(text)
        elements = []
        for idx in indices if indices is not None else [None]:
            env = dict(os.environ)
            env.update(
                LSB_JOBID=str(jid),
                LSB_JOBNAME=name if idx is None else f"{name}[{idx}]",
                LSB_QUEUE=queue,
                LSB_SUBCWD=cwd,
                LS_SUBCWD=cwd,
            )
            if idx is not None:
                env["LSB_JOBINDEX"] = str(idx)
            out = _output(opts.get("-oo") or opts.get("-o"), cwd, jid, idx)
            err = _output(opts.get("-eo") or opts.get("-e"), cwd, jid, idx) or out
            elements.append(new_element(idx, env, out, err))
        job: Job = {
            "id": jid,
            "name": name,
            "queue": queue,
            "user": getpass.getuser(),
            "cwd": cwd,
            "script": str(spooled),
            "accept": time.time(),
            "start_delay": float(os.environ.get("LSF_STANDIN_START_DELAY", "0.5")),
            "slots": int(os.environ.get("LSF_STANDIN_SLOTS", "4")),
            "grace": float(os.environ.get("LSF_STANDIN_KILL_GRACE", "1.0")),
            "deps": deps,
            "delete_orphans": bool(opts.get("-ti")),
            "array": indices is not None,
            "elements": elements,
        }
        submit(s, job)
    print(f"Job <{jid}> is submitted to queue <{queue}>.")
    return 0


def _output(template: Any, cwd: str, jid: int, idx: int | None) -> str | None:
    if not template:
        return None  # LSF mails the output; the stand-in drops it
    path = str(template).replace("%J", str(jid)).replace("%I", str(idx or 0))
    return path if os.path.isabs(path) else os.path.join(cwd, path)


# ------------------------------------------------------------------------------------ reading
def _stat(e: Job) -> str:
    if e["st"] == "queued":
        return "PEND"
    if e["st"] == "running":
        return "RUN"
    return "DONE" if e["how"] == "exit" and e["ec"] == 0 else "EXIT"


def _exit_code(e: Job) -> str:
    if e["st"] != "ended" or e["ec"] is None or e["ec"] == 0:
        return "-"  # LSF shows no exit code for 0
    return str(e["ec"])


def _time(t: float | None) -> str:
    return "-" if t is None else time.strftime("%b %e %H:%M", time.localtime(t))


def _value(field: str, job: Job, e: Job) -> str:
    idx = e["index"]
    return {
        "jobid": str(job["id"]),
        "jobindex": str(idx or 0),
        "stat": _stat(e),
        "exit_code": _exit_code(e),
        "job_name": job["name"] if idx is None else f"{job['name']}[{idx}]",
        "name": job["name"] if idx is None else f"{job['name']}[{idx}]",
        "queue": job["queue"],
        "user": job["user"],
        "from_host": "localhost",
        "exec_host": "-" if e["start"] is None else "localhost",
        "submit_time": _time(job["accept"]),
        "start_time": _time(e["start"]),
        "finish_time": _time(e["end"]),
    }[field]


def _select(s: Store, ids: list[str], *, every: bool) -> tuple[list[tuple[Job, Job]], list[str]]:
    """The (job, element) rows the ids name (all jobs without ids), and the ids not found."""
    rows: list[tuple[Job, Job]] = []
    missing: list[str] = []
    jobs = s.all()
    if not ids or ids == ["0"]:
        for job in jobs:
            rows += [(job, e) for e in job["elements"] if every or e["st"] != "ended"]
        return rows, missing
    for raw in ids:
        m = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", raw)
        job = s.load(int(m.group(1))) if m else None
        if m is None or job is None:
            missing.append(raw)
            continue
        want = int(m.group(2)) if m.group(2) else None
        found = [e for e in job["elements"] if want is None or e["index"] == want]
        if not found:
            missing.append(raw)
        rows += [(job, e) for e in found if every or e["st"] != "ended"]
    return rows, missing


def bjobs(argv: list[str]) -> int:
    fields = _DEFAULT
    header = True
    every = False
    ids: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o":
            spec = argv[i + 1] if i + 1 < len(argv) else ""
            fields = [f.split(":")[0].lower() for f in spec.split() if "=" not in f]
            unknown = [f for f in fields if f not in _FIELDS]
            if unknown or not fields:
                raise Refused(f"{' '.join(unknown) or spec}: Illegal field name.")
            i += 1
        elif a == "-noheader":
            header = False
        elif a in ("-a", "-d"):
            every = True
        elif a in ("-w", "-W", "-A", "-p", "-r"):
            pass
        elif a in ("-u", "-q", "-J", "-m", "-P", "-g"):
            i += 1
        elif a.startswith("-"):
            raise Refused(f"{a}: Illegal option.")
        else:
            ids.append(a)
        i += 1
    s = store()
    with s.locked():
        reap(s)
        rows, missing = _select(s, ids, every=every)
    out = []
    if header and rows:
        out.append(_line([_FIELDS[f][0] for f in fields], fields))
    out += [_line([_value(f, job, e) for f in fields], fields) for job, e in rows]
    if out:
        print("\n".join(out))
    for raw in missing:
        print(f"Job <{raw}> is not found", file=sys.stderr)
    if not rows and not missing:
        print("No unfinished job found", file=sys.stderr)
    return 255 if missing else 0


def _line(values: list[str], fields: list[str]) -> str:
    cells = [v.ljust(_FIELDS[f][1]) for v, f in zip(values, fields, strict=True)]
    return " ".join(cells).rstrip()


# ------------------------------------------------------------------------------------ bkill
def bkill(argv: list[str]) -> int:
    ids = [a for a in argv if not a.startswith("-")]
    if not ids:
        raise Refused("Job ID or one of '-m', '-u' and '-q' must be specified")
    s = store()
    bad = False
    with s.locked():
        reap(s)
        for raw in ids:
            if raw == "0":
                for job in s.all():
                    for e in cancel(s, job):
                        print(f"Job <{_named(job, e)}> is being terminated")
                continue
            m = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", raw)
            job = s.load(int(m.group(1))) if m else None
            if m is None or job is None:
                print(f"Job <{raw}>: No matching job found", file=sys.stderr)
                bad = True
                continue
            want = {int(m.group(2))} if m.group(2) else None
            hit = cancel(s, job, want)  # type: ignore[arg-type]
            if not hit:
                print(f"Job <{raw}>: Job has already finished", file=sys.stderr)
                bad = True
            elif want is None and job.get("array"):
                print(f"Job <{job['id']}> is being terminated")
            else:
                for e in hit:
                    print(f"Job <{_named(job, e)}> is being terminated")
    return 255 if bad else 0


def _named(job: Job, e: Job) -> str:
    return str(job["id"]) if e["index"] is None else f"{job['id']}[{e['index']}]"


# ------------------------------------------------------------------------------------ bhist
def bhist(argv: list[str]) -> int:
    every = "-a" in argv or "-d" in argv
    ids = [a for a in argv if not a.startswith("-")]
    s = store()
    with s.locked():
        reap(s)
        rows, missing = _select(s, ids, every=every or bool(ids))
    if not rows:
        print("No matching job found", file=sys.stderr)
        return 255
    now = time.time()
    table = [
        ["JOBID", "USER", "JOB_NAME", "PEND", "PSUSP", "RUN", "USUSP", "SSUSP", "UNKWN", "TOTAL"]
    ]
    for job, e in rows:
        start = e["start"]
        end = e["end"] if e["end"] is not None else now
        pend = (start if start is not None else end) - job["accept"]
        run = end - start if start is not None else 0
        name = _value("job_name", job, e)
        table.append(
            [
                _named(job, e),
                job["user"],
                name,
                f"{pend:.0f}",
                "0",
                f"{run:.0f}",
                "0",
                "0",
                "0",
                f"{pend + run:.0f}",
            ]
        )
    widths = [max(len(r[k]) for r in table) + 2 for k in range(len(table[0]))]
    print("Summary of time in seconds spent in various states:")
    for r in table:
        print("".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    for raw in missing:
        print(f"{raw}: No matching job found", file=sys.stderr)
    return 0
