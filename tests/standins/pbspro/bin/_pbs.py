"""A stand-in for Altair PBS Professional's qsub / qstat / qdel (with job history) that runs jobs
on this machine.

NOT Altair's software: a test double that prints PBS Pro's documented formats (see ../README.md
for the sources and every choice made where the documents say nothing). Jobs are run by the
shared runner of ``tests/standins/_core.py``. Standard library only, Python 3.11.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from _core import Job, Store, cancel, directives, ended, new_element, reap, submit

_VALUE = {
    "-q",
    "-N",
    "-J",
    "-W",
    "-o",
    "-e",
    "-j",
    "-l",
    "-A",
    "-a",
    "-c",
    "-k",
    "-m",
    "-M",
    "-p",
    "-P",
    "-r",
    "-S",
    "-u",
    "-v",
    "-C",
    "-R",
}
_FLAG = {"-V", "-h", "-z", "-f", "-n"}
_ID = re.compile(r"(\d+)(\[(\d*)\])?(?:\.([\w.-]+))?")
UNKNOWN_RC = 153  # qstat's exit status for an unknown job id
FINISHED_RC = 35  # for a finished job asked about without -x


class Refused(Exception):
    def __init__(self, message: str, rc: int = 2) -> None:
        super().__init__(message)
        self.rc = rc


def server() -> str:
    return os.environ.get("PBS_STANDIN_SERVER") or socket.gethostname().split(".")[0]


def store() -> Store:
    home = os.environ.get("PBS_STANDIN_HOME") or os.path.expanduser("~/.pbs-standin")
    return Store(Path(home))


def main(command: str, argv: list[str]) -> int:
    try:
        return {"qsub": qsub, "qstat": qstat, "qdel": qdel}[command](argv)
    except Refused as e:
        print(f"{command}: {e}", file=sys.stderr)
        return e.rc


# ------------------------------------------------------------------------------------ qsub
def _options(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return opts, args[i + 1 :]
        if a in _FLAG:
            opts[a] = True
        elif a[:2] in _VALUE:
            value = a[2:]
            if not value:
                if i + 1 >= len(args):
                    raise Refused(f"option requires an argument -- '{a[1:]}'")
                value = args[i + 1]
                i += 1
            if a[:2] in ("-l", "-W", "-v"):
                opts.setdefault(a[:2], []).append(value)
            else:
                opts[a[:2]] = value
        elif a == "-I":
            raise Refused("interactive jobs are not emulated by this stand-in")
        elif a.startswith("-"):
            raise Refused(f"invalid option -- '{a[1:]}'")
        else:
            return opts, args[i:]
        i += 1
    return opts, []


def _range(spec: str) -> list[int]:
    m = re.fullmatch(r"(\d+)-(\d+)(?::(\d+))?", spec.strip())
    if m is None or int(m.group(1)) > int(m.group(2)) or int(m.group(3) or 1) < 1:
        raise Refused("illegal -J value")
    return list(range(int(m.group(1)), int(m.group(2)) + 1, int(m.group(3) or 1)))


def _dependencies(s: Store, values: list[str]) -> list[list[Any]]:
    deps: list[list[Any]] = []
    kinds = {"afterok": "ok", "afternotok": "notok", "afterany": "any"}
    for value in values:
        if not value.startswith("depend="):
            continue
        for part in value.removeprefix("depend=").split(","):
            kind, _, ids = part.partition(":")
            if kind not in kinds or not ids:
                raise Refused("illegal -W value")
            for raw in ids.split(":"):
                m = _ID.fullmatch(raw)
                if m is None or s.load(int(m.group(1))) is None:
                    raise Refused(f"Unknown Job Id {raw}", UNKNOWN_RC)
                deps.append([kinds[kind], int(m.group(1))])
    return deps


def qsub(argv: list[str]) -> int:
    cli, operands = _options(argv)
    if not operands:
        text = sys.stdin.read()
        base = "STDIN"
    else:
        path = Path(operands[0])
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            raise Refused(f"script file:: No such file or directory: {operands[0]}") from None
        base = path.name
    found, _ = _options(directives(text, "#PBS"))
    opts = {**found, **cli}
    for key in ("-l", "-W", "-v"):
        opts[key] = found.get(key, []) + cli.get(key, [])
    name = str(opts.get("-N") or base)[:236]
    indices = _range(str(opts["-J"])) if "-J" in opts else None
    queue = str(opts.get("-q") or "workq")
    workdir = os.getcwd()
    host = server()
    home = pwd.getpwuid(os.getuid()).pw_dir
    s = store()
    with s.locked():
        reap(s)
        deps = _dependencies(s, opts["-W"])
        jid = s.next_id()
        spooled = s.home / "spool" / f"{jid}.script"
        spooled.write_text(text, encoding="utf-8", errors="surrogateescape")
        full = f"{jid}[].{host}" if indices is not None else f"{jid}.{host}"
        base_env = {
            "PBS_O_HOME": os.environ.get("HOME", home),
            "PBS_O_LOGNAME": getpass.getuser(),
            "PBS_O_PATH": os.environ.get("PATH", ""),
            "PBS_O_SHELL": os.environ.get("SHELL", "/bin/sh"),
            "PBS_O_HOST": host,
            "PBS_O_WORKDIR": workdir,
            "PBS_O_QUEUE": queue,
            "PBS_O_SYSTEM": "Linux",
        }
        if opts.get("-V"):
            env0 = dict(os.environ)
        else:
            env0 = {"HOME": home, "PATH": "/usr/local/bin:/usr/bin:/bin", "USER": getpass.getuser()}
        for v in opts["-v"]:
            for item in v.split(","):
                k, eq, val = item.partition("=")
                env0[k] = val if eq else os.environ.get(k, "")
        elements = []
        for idx in indices if indices is not None else [None]:
            sub = f"{jid}[{idx}].{host}" if idx is not None else full
            env = {**env0, **base_env}
            env.update(
                PBS_JOBID=sub,
                PBS_JOBNAME=name,
                PBS_QUEUE=queue,
                PBS_ENVIRONMENT="PBS_BATCH",
                PBS_JOBDIR=home,
            )
            if idx is not None:
                env.update(PBS_ARRAY_INDEX=str(idx), PBS_ARRAY_ID=full)
            suffix = "" if idx is None else f".{idx}"
            out = _path(opts.get("-o"), workdir) or os.path.join(workdir, f"{name}.o{jid}{suffix}")
            err = _path(opts.get("-e"), workdir) or os.path.join(workdir, f"{name}.e{jid}{suffix}")
            if str(opts.get("-j", "n")) in ("oe", "eo"):
                err = out
            elements.append(new_element(idx, env, out, err))
        job: Job = {
            "id": jid,
            "name": name,
            "queue": queue,
            "user": getpass.getuser(),
            "host": host,
            "cwd": home,  # PBS starts a job in the user's home directory
            "script": str(spooled),
            "accept": time.time(),
            "start_delay": float(os.environ.get("PBS_STANDIN_START_DELAY", "0.5")),
            "slots": int(os.environ.get("PBS_STANDIN_SLOTS", "4")),
            "grace": float(os.environ.get("PBS_STANDIN_KILL_GRACE", "1.0")),
            "deps": deps,
            "delete_orphans": True,  # a job whose dependency can no longer hold is deleted
            "any_after_deleted": False,  # afterany: not after a job deleted before it ran
            "array": indices is not None,
            "indices": f"{indices[0]}-{indices[-1]}" if indices else None,
            "workdir": workdir,
            "elements": elements,
        }
        submit(s, job)
    print(full)
    return 0


def _path(value: Any, workdir: str) -> str | None:
    if not value:
        return None
    text = str(value).split(":", 1)[-1] if ":" in str(value) else str(value)
    return text if os.path.isabs(text) else os.path.join(workdir, text)


# ------------------------------------------------------------------------------------ reading
def _state(e: Job, job: Job, *, sub: bool) -> tuple[str, str, str | None]:
    """(job_state, substate, Exit_status or None) of one element."""
    if e["st"] == "queued":
        # a job waiting for another one is held (PBS's system hold of a dependency)
        return ("H", "20", None) if not _deps_done(job) else ("Q", "10", None)
    if e["st"] == "running":
        return "R", "42", None
    done = "X" if sub else "F"
    if e["how"] == "exit":
        return done, "92", str(e["ec"])
    if e["how"] == "killed":
        return done, "91", str(256 + e["sig"] if e["sig"] else e["ec"])
    if e["how"] == "lost":
        return done, "93", "-1"
    return done, "91", None  # deleted before it ran: no exit status


def _deps_done(job: Job) -> bool:
    s = store()
    for _, jid in job.get("deps", []):
        other = s.load(int(jid))
        if other is not None and not ended(other):
            return False
    return True


def _parent(job: Job) -> tuple[str, str, str | None]:
    states = [e["st"] for e in job["elements"]]
    if all(x == "ended" for x in states):
        return "F", "92", None
    if all(x == "queued" for x in states):
        return _state(job["elements"][0], job, sub=False)
    return "B", "42", None


def _ctime(t: float | None) -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(t or time.time()))


def _block(job: Job, e: Job | None) -> list[str]:
    host = job["host"]
    if e is None:  # an array's parent
        ident = f"{job['id']}[].{host}"
        state, substate, code = _parent(job)
    elif job["array"]:
        ident = f"{job['id']}[{e['index']}].{host}"
        state, substate, code = _state(e, job, sub=True)
    else:
        ident = f"{job['id']}.{host}"
        state, substate, code = _state(e, job, sub=False)
    first = job["elements"][0]
    attrs = [
        ("Job_Name", job["name"]),
        ("Job_Owner", f"{job['user']}@{host}"),
        ("job_state", state),
        ("queue", job["queue"]),
        ("server", host),
        ("ctime", _ctime(job["accept"])),
        ("Error_Path", f"{host}:{(e or first)['err']}"),
        ("Output_Path", f"{host}:{(e or first)['out']}"),
        ("qtime", _ctime(job["accept"])),
    ]
    if e is not None and e["start"] is not None:
        attrs += [("exec_host", f"{host}/0"), ("stime", _ctime(e["start"]))]
    attrs.append(("substate", substate))
    variables = ",".join(
        f"{k}={v}" for k, v in sorted((e or first)["env"].items()) if k.startswith("PBS_O_")
    )
    attrs.append(("Variable_List", variables))
    if e is not None and e["end"] is not None:
        attrs.append(("obittime", _ctime(e["end"])))
    if code is not None:
        attrs.append(("Exit_status", code))
    if job["array"] and e is None:
        counts = {"Queued": 0, "Running": 0, "Exiting": 0, "Expired": 0}
        for x in job["elements"]:
            counts[{"queued": "Queued", "running": "Running"}.get(x["st"], "Expired")] += 1
        attrs += [
            ("array", "True"),
            ("array_indices_submitted", job["indices"]),
            ("array_state_count", " ".join(f"{k}:{v}" for k, v in counts.items())),
        ]
    elif job["array"] and e is not None:
        attrs += [("array_id", f"{job['id']}[].{host}"), ("array_index", str(e["index"]))]
    lines = [f"Job Id: {ident}"]
    for key, value in attrs:
        text = f"    {key} = {value}"
        # qstat -f wraps a long value: the lines after the first start with a tab
        while len(text) > 79:
            lines.append(text[:79])
            text = "\t" + text[79:]
        lines.append(text)
    return lines


def _rows(
    s: Store, ids: list[str], *, history: bool, subjobs: bool
) -> tuple[list[tuple[Job, Job | None]], list[tuple[str, int]]]:
    """(job, element or None for an array's parent) to show, and the (message, rc) of ids
    that cannot be."""
    shown: list[tuple[Job, Job | None]] = []
    bad: list[tuple[str, int]] = []

    def add(job: Job, want: int | None = None) -> None:
        if not job["array"]:
            shown.append((job, job["elements"][0]))
            return
        if want is None:
            shown.append((job, None))
        if subjobs or want is not None:
            shown.extend((job, x) for x in job["elements"] if want in (None, x["index"]))

    if not ids:
        for job in s.all():
            if history or not ended(job):
                add(job)
        return shown, bad
    for raw in ids:
        m = _ID.fullmatch(raw)
        job = s.load(int(m.group(1))) if m else None
        full = raw if m is None or m.group(4) else f"{raw}.{server()}"
        if m is None or job is None or bool(m.group(2)) != job["array"]:
            # a job array is always named with its brackets (12[]); a plain job never is
            bad.append((f"Unknown Job Id {full}", UNKNOWN_RC))
            continue
        want = int(m.group(3)) if m.group(3) else None
        if want is not None and not any(x["index"] == want for x in job["elements"]):
            bad.append((f"Unknown Job Id {full}", UNKNOWN_RC))
            continue
        if not history and ended(job):
            bad.append(
                (
                    f"{full} Job has finished, use -x or -H to obtain historical job information",
                    FINISHED_RC,
                )
            )
            continue
        add(job, want)
    return shown, bad


def qstat(argv: list[str]) -> int:
    flags: set[str] = set()
    ids: list[str] = []
    for a in argv:
        if a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch not in "xftJHsw1a":
                    raise Refused(f"invalid option -- '{ch}'")
                flags.add(ch)
        else:
            ids.append(a)
    s = store()
    with s.locked():
        reap(s)
        rows, bad = _rows(s, ids, history="x" in flags or "H" in flags, subjobs="t" in flags)
        if "f" in flags:
            out: list[str] = []
            for job, e in rows:
                out += [*_block(job, e), ""]
            text = "\n".join(out)
        else:
            text = _table(rows)
    if text:
        print(text)
    for message, _rc in bad:
        print(f"qstat: {message}", file=sys.stderr)
    return max((rc for _, rc in bad), default=0)


def _table(rows: list[tuple[Job, Job | None]]) -> str:
    if not rows:
        return ""
    lines = [
        "Job id            Name             User              Time Use S Queue",
        "----------------  ---------------- ----------------  -------- - -----",
    ]
    for job, e in rows:
        if e is None:
            ident, state = f"{job['id']}[].{job['host']}", _parent(job)[0]
        else:
            ident = (
                f"{job['id']}[{e['index']}].{job['host']}"
                if job["array"]
                else f"{job['id']}.{job['host']}"
            )
            state = _state(e, job, sub=job["array"])[0]
        used = "00:00:00"
        lines.append(
            f"{ident[:16]:<17} {job['name'][:16]:<16} {job['user'][:16]:<16}  "
            f"{used:>8} {state} {job['queue']}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ qdel
def qdel(argv: list[str]) -> int:
    ids = [a for a in argv if not a.startswith("-")]
    if not ids:
        raise Refused("usage: qdel [-W delay|force] [-x] job_identifier...", 2)
    s = store()
    rc = 0
    with s.locked():
        reap(s)
        for raw in ids:
            m = _ID.fullmatch(raw)
            job = s.load(int(m.group(1))) if m else None
            full = raw if m is None or m.group(4) else f"{raw}.{server()}"
            if m is None or job is None or bool(m.group(2)) != job["array"]:
                print(f"qdel: Unknown Job Id {full}", file=sys.stderr)
                rc = rc or UNKNOWN_RC
                continue
            want = {int(m.group(3))} if m.group(3) else None
            if not cancel(s, job, want):  # type: ignore[arg-type]
                print(f"qdel: Job has finished {full}", file=sys.stderr)
                rc = rc or FINISHED_RC
    return rc
