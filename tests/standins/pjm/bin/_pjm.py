"""A stand-in for Fujitsu PJM (pjsub / pjstat / pjdel) that runs jobs on this machine.

This is NOT Fujitsu's software: it is a test double that mimics the documented command
lines and output formats closely enough for clients such as WHEEL or sharin to be tested
against it.  See ../README.md for the formats, the sources followed and every deviation.

No daemon: ``pjsub`` writes a job record and starts one detached runner process per
(sub) job; the runner waits for its turn (step order, a free slot), runs the job script,
and records the end state.  All records live in ``$PJM_STANDIN_HOME`` (default
``~/.pjm-standin``) and every change happens under one ``fcntl.flock`` lock.

Standard library only, Python 3.11.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENDED = ("EXT", "CCL", "ERR", "RJT")
POLL = 0.05  # seconds between a runner's checks

# PJM codes (PC) used here; see README.md for the source table.
PC_OK = 0
PC_PJDEL = 1
PC_STEP_DEPENDENCY = 6
PC_ELAPSE = 11
PC_NODE_DOWN = 20
PC_SHELL_FAILED = 21

Job = dict[str, Any]
Sub = dict[str, Any]


# --------------------------------------------------------------------------- state


def home() -> Path:
    h = os.environ.get("PJM_STANDIN_HOME") or os.path.join(os.path.expanduser("~"), ".pjm-standin")
    p = Path(h)
    (p / "jobs").mkdir(parents=True, exist_ok=True)
    (p / "spool").mkdir(exist_ok=True)
    (p / "slots").mkdir(exist_ok=True)
    (p / "log").mkdir(exist_ok=True)
    return p


@contextlib.contextmanager
def locked(h: Path) -> Iterator[None]:
    fd = os.open(h / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def job_path(h: Path, jid: int) -> Path:
    return h / "jobs" / f"{jid}.json"


def load_job(h: Path, jid: int) -> Job | None:
    try:
        with open(job_path(h, jid), encoding="utf-8") as f:
            return json.load(f)  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def save_job(h: Path, job: Job) -> None:
    """Atomic write: a temporary file in the same directory, then rename."""
    path = job_path(h, job["id"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(job, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def all_jobs(h: Path) -> list[Job]:
    jobs = []
    for p in (h / "jobs").glob("*.json"):
        if p.stem.isdigit():
            j = load_job(h, int(p.stem))
            if j is not None:
                jobs.append(j)
    jobs.sort(key=lambda j: j["id"])
    return jobs


def next_id(h: Path) -> int:
    """Called under the lock; the counter file is the only source of job ids."""
    path = h / "counter"
    try:
        n = int(path.read_text().strip() or "0")
    except FileNotFoundError:
        n = 0
    n += 1
    tmp = path.with_name(f".counter.{os.getpid()}.tmp")
    tmp.write_text(f"{n}\n")
    os.replace(tmp, path)
    return n


def find_sub(job: Job, key: str) -> Sub:
    subs: list[Sub] = job["subs"]
    for s in subs:
        if s["key"] == key:
            return s
    raise KeyError(key)


def job_ended(job: Job) -> bool:
    return all(s["st"] in ENDED for s in job["subs"])


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


def reap_orphans(h: Path) -> None:
    """Under the lock: a sub job whose runner died without recording an end becomes ERR."""
    for job in all_jobs(h):
        changed = False
        for s in job["subs"]:
            if s["st"] in ENDED or not s.get("runner_pid"):
                continue
            if pid_alive(s["runner_pid"]):
                continue
            if s.get("pgid"):
                with contextlib.suppress(OSError):
                    os.killpg(s["pgid"], signal.SIGKILL)
            finish(s, "ERR", s.get("ec") or 0, PC_NODE_DOWN)
            changed = True
        if changed:
            save_job(h, job)


def finish(s: Sub, st: str, ec: int, pc: int, sig: int | None = None) -> None:
    s["st"] = st
    s["ec"] = ec
    s["pc"] = pc
    s["sn"] = sig
    s["end"] = time.time()


# --------------------------------------------------------------------------- messages


def info(cmd: str, code: str, text: str) -> None:
    print(f"[INFO] PJM {code} {cmd} {text}", flush=True)


def err(cmd: str, code: str, text: str) -> int:
    print(f"[ERR.] PJM {code} {cmd} {text}", file=sys.stderr, flush=True)
    return 1


# --------------------------------------------------------------------------- pjsub

# Options taking a value, and flags.  Long aliases map to the short spelling.
_VALUE_OPTS = {
    "-L": "-L",
    "--rsc-list": "-L",
    "-N": "-N",
    "--name": "-N",
    "-o": "-o",
    "-e": "-e",
    "-z": "-z",
    "-g": "-g",
    "--gname": "-g",
    "-x": "-x",
    "-m": "-m",
    "--mail-list": "--mail-list",
    "--mpi": "--mpi",
    "--sparam": "--sparam",
    "--spath": "--spath",
    "-p": "-p",
    "-P": "-P",
    "--llio": "--llio",
    "-w": "-w",
}
_FLAG_OPTS = {
    "-X": "-X",
    "-j": "-j",
    "-s": "-s",
    "-S": "-S",
    "--step": "--step",
    "--bulk": "--bulk",
    "--restart": "--restart",
    "--norestart": "--norestart",
    "--no-check-directory": "--no-check-directory",
    "--help": "--help",
}


class UsageError(Exception):
    pass


def parse_pjsub_args(
    args: list[str], *, directive: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Return (options, operands).  Values of repeatable options are lists."""
    opts: dict[str, Any] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            operands.extend(args[i + 1 :])
            break
        if not a.startswith("-") or a == "-":
            operands.append(a)
            if not directive:
                # Options after the script name are not options (like real pjsub).
                operands.extend(args[i + 1 :])
                break
            i += 1
            continue
        name, value = a, None
        if a.startswith("--") and "=" in a:
            name, value = a.split("=", 1)
        elif not a.startswith("--") and len(a) > 2:
            name, value = a[:2], a[2:]
        if name in _FLAG_OPTS and value is None:
            opts[_FLAG_OPTS[name]] = True
            i += 1
            continue
        if name in _VALUE_OPTS:
            key = _VALUE_OPTS[name]
            if value is None:
                if i + 1 >= len(args):
                    raise UsageError(f"Option {name} requires an argument.")
                value = args[i + 1]
                i += 1
            opts.setdefault(key, []).append(value)
            i += 1
            continue
        raise UsageError(f"Invalid option ({a}).")
    return opts, operands


def read_directives(script_text: str) -> list[str]:
    """The ``#PJM`` lines of the leading comment block, as one argument list."""
    out: list[str] = []
    for n, line in enumerate(script_text.splitlines()):
        s = line.strip()
        if n == 0 and s.startswith("#!"):
            continue
        if not s:
            continue
        if s.startswith("#PJM"):
            rest = s[4:]
            if rest and not rest[0].isspace():
                continue  # e.g. "#PJMX": not a directive
            try:
                out.extend(shlex.split(rest, comments=True))
            except ValueError as e:
                raise UsageError(f"Invalid directive line ({s}): {e}.") from e
            continue
        if s.startswith("#"):
            continue
        break
    return out


def parse_resources(values: list[str]) -> dict[str, str]:
    res: dict[str, str] = {}
    for v in values:
        for item in v.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" not in item:
                raise UsageError(f"Invalid resource specification ({item}).")
            k, val = item.split("=", 1)
            res[k.strip()] = val.strip()
    return res


def parse_elapse(v: str) -> int | None:
    """``[[hh:]mm:]ss`` (also ``unlimited``) -> seconds."""
    v = v.strip()
    if v in ("unlimited", ""):
        return None
    if "-" in v:  # a range "min-max": the maximum is the limit
        v = v.split("-", 1)[1] or v.split("-", 1)[0]
    parts = v.split(":")
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise UsageError(f"Invalid elapse value ({v}).")
    secs = 0
    for p in parts:
        secs = secs * 60 + int(p)
    return secs


def fmt_elapse(secs: float | None) -> str:
    if secs is None:
        return "-"
    secs = int(secs)
    return f"{secs // 3600:04d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def parse_sparam(v: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in v.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise UsageError(f"Invalid --sparam value ({item}).")
        k, val = item.split("=", 1)
        k = k.strip()
        if k not in ("jid", "jnam", "sn", "sd"):
            raise UsageError(f"Invalid --sparam keyword ({k}).")
        out[k] = val.strip()
    return out


_SD_RE = re.compile(r"^(ec|pc)(==|!=|<=|>=|<|>)(-?\d+)$")


def parse_sd(v: str) -> dict[str, Any]:
    """``form[:[deletetype][:stepno[:stepno...]]]``."""
    parts = v.split(":")
    m = _SD_RE.match(parts[0].strip())
    if not m:
        raise UsageError(f"Invalid dependency statement ({v}).")
    dtype = parts[1].strip() if len(parts) > 1 and parts[1].strip() else "one"
    if dtype not in ("one", "after", "all"):
        raise UsageError(f"Invalid delete type in dependency statement ({v}).")
    steps = []
    for p in parts[2:]:
        if not p.strip().isdigit():
            raise UsageError(f"Invalid step number in dependency statement ({v}).")
        steps.append(int(p))
    return {
        "item": m.group(1),
        "op": m.group(2),
        "value": int(m.group(3)),
        "type": dtype,
        "steps": steps,
    }


def minimal_env(submit_env: dict[str, str]) -> dict[str, str]:
    """What a job gets without -X: a login-like minimal environment."""
    try:
        pw = pwd.getpwuid(os.getuid())
        user, home_dir, shell = pw.pw_name, pw.pw_dir, pw.pw_shell or "/bin/sh"
    except KeyError:
        user = getpass.getuser()
        home_dir = os.path.expanduser("~")
        shell = "/bin/sh"
    env = {
        "HOME": home_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": shell,
        "PATH": os.environ.get("PJM_STANDIN_DEFAULT_PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": submit_env.get("LANG", "C"),
        "TERM": submit_env.get("TERM", "dumb"),
    }
    return env


def pjsub_main(argv: list[str]) -> int:
    cmd = "pjsub"
    try:
        cli, operands = parse_pjsub_args(argv)
    except UsageError as e:
        return err(cmd, "0007", str(e))
    if cli.get("--help"):
        print("usage: pjsub [options] [script]  (PJM stand-in; see tests/standins/pjm/README.md)")
        return 0
    if len(operands) > 1:
        return err(cmd, "0007", f"Too many operands ({' '.join(operands)}).")

    workdir = os.getcwd()
    if operands:
        script_arg = operands[0]
        spath = Path(script_arg) if os.path.isabs(script_arg) else Path(workdir) / script_arg
        if not spath.is_file():
            return err(cmd, "0008", f"Script file ({script_arg}) is not found.")
        try:
            script_text = spath.read_bytes().decode("utf-8", errors="surrogateescape")
        except OSError as e:
            return err(cmd, "0008", f"Script file ({script_arg}) cannot be read: {e.strerror}.")
        default_name = spath.name
    else:
        script_text = sys.stdin.read()
        default_name = "STDIN"

    try:
        dopts, _ = parse_pjsub_args(read_directives(script_text), directive=True)
    except UsageError as e:
        return err(cmd, "0007", str(e))
    # Command line wins: per key for -L, whole value otherwise; -x accumulates.
    opts: dict[str, Any] = dict(dopts)
    for k, v in cli.items():
        if k in ("-L", "-x"):
            opts[k] = dopts.get(k, []) + v
        else:
            opts[k] = v

    def last(key: str) -> str | None:
        v = opts.get(key)
        return v[-1] if v else None

    try:
        resources = parse_resources(opts.get("-L", []))
        elapse = parse_elapse(resources["elapse"]) if "elapse" in resources else None
        sparam = last("--sparam")
        step, bulk = bool(opts.get("--step")), bool(opts.get("--bulk"))
        if step and bulk:
            raise UsageError("--step and --bulk cannot be specified together.")
        if bulk:
            if sparam is None:
                raise UsageError("--bulk requires --sparam.")
            m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", sparam)
            if not m or int(m.group(1)) > int(m.group(2)) or int(m.group(2)) > 999999:
                raise UsageError(f"Invalid --sparam value for a bulk job ({sparam}).")
            bulk_range = (int(m.group(1)), int(m.group(2)))
        sp = parse_sparam(sparam) if step and sparam is not None else {}
        if sparam is not None and not step and not bulk:
            raise UsageError("--sparam requires --step or --bulk.")
        sd = parse_sd(sp["sd"]) if "sd" in sp else None
        sn = int(sp["sn"]) if "sn" in sp else None
        if "sn" in sp and not sp["sn"].isdigit():
            raise UsageError(f"Invalid step number ({sp['sn']}).")
        if "jid" in sp and not sp["jid"].isdigit():
            raise UsageError(f"Invalid job id ({sp['jid']}).")
        if opts.get("-z") and opts["-z"][-1] != "jid":
            raise UsageError(f"Invalid value for -z ({opts['-z'][-1]}).")
        extra_env: dict[str, str] = {}
        for x in opts.get("-x", []):
            for item in x.split(","):
                if "=" in item:
                    k, val = item.split("=", 1)
                    extra_env[k.strip()] = val
                elif item.strip():
                    extra_env[item.strip()] = os.environ.get(item.strip(), "")
    except (UsageError, ValueError) as e:
        return err(cmd, "0007", str(e))

    name = last("-N") or default_name
    if step and "jnam" in sp:
        name = sp["jnam"]
    submit_env = dict(os.environ)
    pass_env = bool(opts.get("-X"))
    slots = _env_int("PJM_STANDIN_SLOTS", 4)
    # PJM starts queued jobs on its scheduling cycle, never the instant they are accepted
    start_delay = max(0.0, _env_float("PJM_STANDIN_START_DELAY", 1.0))
    grace = _env_float("PJM_STANDIN_KILL_GRACE", 1.0)
    limit = os.environ.get("PJM_STANDIN_ACCEPT_LIMIT")

    h = home()
    with locked(h):
        reap_orphans(h)
        jobs = all_jobs(h)
        if limit is not None and limit.strip():
            active = sum(1 for j in jobs for s in j["subs"] if s["st"] not in ENDED)
            new = bulk_range[1] - bulk_range[0] + 1 if bulk else 1
            if active + new > int(limit):
                return err(
                    cmd,
                    "0072",
                    f"Job exceeded the accept limit. (accepted={active}, limit={int(limit)})",
                )

        # Which job does this submission create or join?
        job: Job | None = None
        if step and ("jid" in sp or "jnam" in sp):
            if "jid" in sp:
                job = load_job(h, int(sp["jid"]))
                if job is None or job["md"] != "ST":
                    return err(cmd, "0050", f"Step job {sp['jid']} does not exist.")
                if job_ended(job):
                    return err(cmd, "0051", f"Step job {sp['jid']} has already ended.")
            else:
                cands = [j for j in jobs if j["md"] == "ST" and j["name"] == sp["jnam"]]
                cands = [j for j in cands if not job_ended(j)]
                job = cands[-1] if cands else None
        if job is None:
            jid = next_id(h)
            job = {
                "id": jid,
                "md": "ST" if step else ("BU" if bulk else "NM"),
                "name": name,
                "user": getpass.getuser(),
                "accept": time.time(),
                "subs": [],
            }
        jid = job["id"]

        if step:
            used = [s["index"] for s in job["subs"]]
            if sn is None:
                sn = max(used) + 1 if used else 0
            if sn in used:
                return err(cmd, "0052", f"Step number {sn} already exists in step job {jid}.")
            later_started = [s for s in job["subs"] if s["index"] > sn and s["st"] != "QUE"]
            if later_started:
                return err(cmd, "0053", f"Step number {sn} is smaller than a started sub job.")
            indexes = [sn]
        elif bulk:
            indexes = list(range(bulk_range[0], bulk_range[1] + 1))
        else:
            indexes = [None]

        spool = h / "spool" / str(jid)
        spool.mkdir(parents=True, exist_ok=True)
        created: list[Sub] = []
        for idx in indexes:
            if job["md"] == "ST":
                key = f"{jid}_{idx}"
            elif job["md"] == "BU":
                key = f"{jid}[{idx}]"
            else:
                key = str(jid)
            spooled = spool / f"{key}.script"
            spooled.write_bytes(script_text.encode("utf-8", errors="surrogateescape"))
            out = last("-o") or f"{name}.{key}.out"
            errf = last("-e") or f"{name}.{key}.err"
            env = dict(submit_env) if pass_env else minimal_env(submit_env)
            env.update(extra_env)
            env.update(
                {
                    "PJM_JOBID": str(jid),
                    "PJM_JOBNAME": name,
                    "PJM_O_WORKDIR": workdir,
                    "PJM_O_HOST": socket.gethostname(),
                    "PJM_O_LOGNAME": submit_env.get("LOGNAME", getpass.getuser()),
                    "PJM_O_HOME": submit_env.get("HOME", ""),
                    "PJM_O_PATH": submit_env.get("PATH", ""),
                    "PJM_O_SHELL": submit_env.get("SHELL", ""),
                    "PJM_O_LANG": submit_env.get("LANG", ""),
                }
            )
            if job["md"] == "BU":
                env["PJM_BULKNUM"] = str(idx)
                env["PJM_SUBJOBID"] = key
            elif job["md"] == "ST":
                env["PJM_STEPNUM"] = str(idx)
                env["PJM_SUBJOBID"] = key
            sub: Sub = {
                "key": key,
                "index": idx,
                "name": name,
                "workdir": workdir,
                "script": str(spooled),
                "out": os.path.join(workdir, out),
                "err": None if opts.get("-j") else os.path.join(workdir, errf),
                "env": env,
                "resources": resources,
                "elapse": elapse,
                "sd": sd,
                "slots": slots,
                "grace": grace,
                "start_delay": start_delay,
                "st": "QUE",
                "ec": None,
                "pc": None,
                "sn": None,
                "accept": time.time(),
                "start": None,
                "end": None,
                "runner_pid": None,
                "pid": None,
                "pgid": None,
                "cancel": None,
                "kill_reason": None,
                "options": {k: v for k, v in opts.items() if k not in ("-x",)},
            }
            job["subs"].append(sub)
            created.append(sub)
        job["subs"].sort(key=lambda s: (s["index"] is not None, s["index"] or 0))
        save_job(h, job)

        for sub in created:
            sub["runner_pid"] = spawn_runner(h, jid, sub["key"])
        save_job(h, job)

    shown = f"{jid}_{indexes[0]}" if job["md"] == "ST" else str(jid)
    if opts.get("-z"):
        print(shown, flush=True)
    else:
        info(cmd, "0000", f"Job {shown} submitted.")
    return 0


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def spawn_runner(h: Path, jid: int, key: str) -> int:
    log = open(h / "log" / f"runner-{key}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        p = subprocess.Popen(
            [sys.executable, "-B", os.path.abspath(__file__), "--run", str(h), str(jid), key],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    finally:
        log.close()
    return p.pid


# --------------------------------------------------------------------------- runner


def _try_slot(h: Path, n: int, first: int = 0) -> int | None:
    """A free slot among ``first`` .. ``n - 1`` (its lock held), or None."""
    for i in range(first, n):
        fd = os.open(h / "slots" / f"{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    return None


def _order(jid: int, sub: Sub) -> tuple[float, int, int]:
    return (float(sub["accept"]), jid, sub["index"] or 0)


def _waits_for_a_slot(job: Job, sub: Sub) -> bool:
    """True when ``sub`` is queued and would take a slot now (its step turn, its start
    delay over)."""
    if sub["st"] != "QUE" or sub.get("cancel"):
        return False
    if job["md"] == "ST" and _step_gate(job, sub) != "run":
        return False
    return time.time() >= float(sub["accept"]) + float(sub.get("start_delay", 0.0))


def _slots_taken_first(h: Path, jid: int, sub: Sub) -> int:
    """How many slots (from slot 0) sub jobs accepted before ``sub`` and waiting for one may
    take: the runners' race for the slots' locks is not their order of submission, so ``sub``
    tries only the slots above those."""
    mine = _order(jid, sub)
    return max(
        (
            int(other["slots"])
            for job in all_jobs(h)
            for other in job["subs"]
            if _order(job["id"], other) < mine and _waits_for_a_slot(job, other)
        ),
        default=0,
    )


def _compare(a: int, op: str, b: int) -> bool:
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        ">": a > b,
        "<=": a <= b,
        ">=": a >= b,
    }[op]


def _step_gate(job: Job, sub: Sub) -> str:
    """For a step sub job: 'wait', 'run' or 'delete'."""
    earlier = [s for s in job["subs"] if s["index"] < sub["index"]]
    if any(s["st"] not in ENDED for s in earlier):
        return "wait"
    sd = sub.get("sd")
    if not sd or not earlier:
        return "run"
    if sd["steps"]:
        refs = [s for s in earlier if s["index"] in sd["steps"]]
    else:
        refs = [max(earlier, key=lambda s: s["index"])]
    for r in refs:
        val = r.get(sd["item"])
        if val is not None and _compare(int(val), sd["op"], sd["value"]):
            return "delete"
    return "run"


def _argv_for(script: str) -> list[str]:
    with open(script, "rb") as f:
        first = f.readline().decode("utf-8", errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].strip().split(None, 1)
        if parts:
            return [parts[0], *parts[1:], script]
    return ["/bin/sh", script]


def runner_main(h: Path, jid: int, key: str) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    slot_fd: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    sub: Sub = {}
    try:
        # ---- queued: wait for step order and a slot
        while True:
            job = load_job(h, jid)
            if job is None:
                return 1
            sub = find_sub(job, key)
            if sub["st"] in ENDED:
                return 0
            if job["md"] == "ST" and _step_gate(job, sub) == "wait":
                time.sleep(POLL)
                continue
            if time.time() < float(sub["accept"]) + float(sub.get("start_delay", 0.0)):
                time.sleep(POLL)
                continue
            if slot_fd is None:
                # first come, first served, as a job manager queues: the slots a sub job
                # accepted earlier waits for are left to it
                slot_fd = _try_slot(h, int(sub["slots"]), _slots_taken_first(h, jid, sub))
                if slot_fd is None and not (job["md"] == "ST" and _step_gate(job, sub) == "delete"):
                    time.sleep(POLL)
                    continue
            with locked(h):
                job = load_job(h, jid)
                assert job is not None
                sub = find_sub(job, key)
                if sub["st"] in ENDED:
                    return 0
                if job["md"] == "ST":
                    gate = _step_gate(job, sub)
                    if gate == "wait":
                        continue
                    if gate == "delete":
                        _delete_by_dependency(job, sub)
                        save_job(h, job)
                        return 0
                if slot_fd is None:
                    continue
                proc = _start(sub)
                save_job(h, job)
                if proc is None:
                    return 0
                break
        # ---- running: watch elapse and pjdel
        grace = float(sub.get("grace", 1.0))
        deadline = sub["start"] + sub["elapse"] if sub.get("elapse") is not None else None
        term_at: float | None = None
        killed = False
        while proc.poll() is None:
            time.sleep(POLL)
            now = time.time()
            if term_at is None:
                cur = load_job(h, jid)
                cancel = cur is not None and find_sub(cur, key).get("cancel")
                if cancel or (deadline is not None and now >= deadline):
                    with locked(h):
                        cur = load_job(h, jid)
                        assert cur is not None
                        s = find_sub(cur, key)
                        if not s.get("cancel"):
                            s["kill_reason"] = "elapse"
                        s["st"] = "RNO"
                        save_job(h, cur)
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, signal.SIGTERM)
                    term_at = now
            elif not killed and now - term_at >= grace:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                killed = True
        rc = proc.returncode
        # Like a job manager, end every process the job left behind.
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with locked(h):
            job = load_job(h, jid)
            assert job is not None
            sub = find_sub(job, key)
            sig = -rc if rc < 0 else None
            ec = 128 + sig if sig else rc
            if sub.get("cancel"):
                finish(sub, "CCL", ec, PC_PJDEL, sig)
            elif sub.get("kill_reason") == "elapse":
                finish(sub, "EXT", ec, PC_ELAPSE, sig)
            else:
                finish(sub, "EXT", ec, PC_OK, sig)
            save_job(h, job)
        return 0
    finally:
        if slot_fd is not None:
            os.close(slot_fd)


def _delete_by_dependency(job: Job, sub: Sub) -> None:
    dtype = sub["sd"]["type"]
    for s in job["subs"]:
        if s["st"] in ENDED:
            continue
        if s is sub or (dtype == "after" and s["index"] > sub["index"]) or (dtype == "all"):
            finish(s, "CCL", 0, PC_STEP_DEPENDENCY)


def _start(sub: Sub) -> subprocess.Popen[bytes] | None:
    """Under the lock: open the output files and start the job script."""
    try:
        argv = _argv_for(sub["script"])
        out = open(sub["out"], "wb")  # noqa: SIM115
        errf = open(sub["err"], "wb") if sub["err"] else None  # noqa: SIM115
    except OSError:
        finish(sub, "ERR", 0, 16)
        return None
    try:
        proc = subprocess.Popen(
            argv,
            cwd=sub["workdir"],
            env=sub["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=errf if errf is not None else subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        msg = f"pjm-standin: cannot execute {argv[0]}: {e.strerror}\n".encode()
        (errf or out).write(msg)
        finish(sub, "ERR", 0, PC_SHELL_FAILED)
        return None
    finally:
        out.close()
        if errf is not None:
            errf.close()
    sub["st"] = "RUN"
    sub["start"] = time.time()
    sub["pid"] = proc.pid
    sub["pgid"] = proc.pid
    return proc


# --------------------------------------------------------------------------- pjstat

# --choose item -> column header (as pjstat prints them)
CHOOSE = {
    "jid": "JOB_ID",
    "jnam": "JOB_NAME",
    "md": "MD",
    "st": "ST",
    "lst": "LST",
    "usr": "USER",
    "grp": "GROUP",
    "sdt": "START_DATE",
    "edt": "END_DATE",
    "adt": "ACCEPT",
    "elp": "ELAPSE_TIM",
    "elpl": "ELAPSE_LIM",
    "nnumr": "NODE_REQUIRE",
    "vnode": "VNODE",
    "core": "CORE",
    "vmem": "V_MEM",
    "ec": "EC",
    "pc": "PC",
    "sn": "SN",
    "pri": "PRI",
    "rscu": "RSC_UNIT",
    "rscg": "RSC_GRP",
    "rsn": "REASON",
}
DEFAULT_COLS = ["jid", "jnam", "md", "st", "usr", "sdt", "elpl", "nnumr", "vnode", "core", "vmem"]
VERBOSE_COLS = [
    "jid", "jnam", "md", "st", "usr", "grp", "sdt", "elp", "elpl", "nnumr", "vnode", "core",
    "vmem", "lst", "ec", "pc", "sn", "pri", "adt", "rscu", "rsn",
]  # fmt: skip


def _fmt_date(t: float | None) -> str:
    return time.strftime("%m/%d %H:%M:%S", time.localtime(t)) if t else "-"


def _parent_view(job: Job) -> Sub:
    """The row of a whole bulk/step job, summarising its sub jobs."""
    subs: list[Sub] = job["subs"]
    if job["md"] == "NM":
        return subs[0]
    live = [s["st"] for s in subs if s["st"] not in ENDED]
    ended = not live
    if not ended:
        st = "RUN" if any(st in ("RUN", "RNO") for st in live) else "QUE"
    elif job.get("cancelled"):
        st = "CCL"
    else:
        st = "EXT"
    starts = [s["start"] for s in subs if s.get("start")]
    ends = [s["end"] for s in subs if s.get("end")]
    return {
        "key": str(job["id"]),
        "name": job["name"],
        "st": st,
        "ec": max(int(s["ec"] or 0) for s in subs) if ended else None,
        "pc": max(int(s["pc"] or 0) for s in subs) if ended else None,
        "sn": None,
        "start": min(starts) if starts else None,
        "end": max(ends) if ended and ends else None,
        "accept": job["accept"],
        "elapse": None if job["md"] == "ST" else subs[0].get("elapse"),
        "resources": {} if job["md"] == "ST" else subs[0].get("resources", {}),
    }


def _cell(col: str, row: Sub, job: Job) -> str:
    ended = row["st"] in ENDED
    res = row.get("resources") or {}
    if col == "jid":
        return str(row["key"])
    if col == "jnam":
        return str(row.get("name") or job["name"])
    if col == "md":
        return str(job["md"])
    if col in ("st", "lst"):
        return str(row["st"])
    if col == "usr":
        return str(job["user"])
    if col == "grp":
        return str(res.get("group", "-"))
    if col == "sdt":
        return _fmt_date(row.get("start"))
    if col == "edt":
        return _fmt_date(row.get("end"))
    if col == "adt":
        return _fmt_date(row.get("accept"))
    if col == "elp":
        if not row.get("start"):
            return "-"
        return fmt_elapse((row.get("end") or time.time()) - row["start"])
    if col == "elpl":
        return fmt_elapse(row.get("elapse"))
    if col == "nnumr":
        return str(res.get("node", "-"))
    if col in ("ec", "pc"):
        v = row.get(col)
        return str(v) if ended and v is not None else "-"
    if col == "sn":
        v = row.get("sn")
        return str(v) if ended and v is not None else "-"
    if col == "pri":
        return "127"
    if col == "rscu":
        return str(res.get("rscunit", "-"))
    if col == "rscg":
        return str(res.get("rscgrp", "-"))
    return "-"


def _parse_target(arg: str) -> tuple[int, str | None] | None:
    m = re.fullmatch(r"(\d+)(?:_(\d+)|\[(\d+)\])?", arg.strip())
    if not m:
        return None
    jid = int(m.group(1))
    if m.group(2) is not None:
        return jid, f"{jid}_{int(m.group(2))}"
    if m.group(3) is not None:
        return jid, f"{jid}[{int(m.group(3))}]"
    return jid, None


def pjstat_main(argv: list[str]) -> int:
    cmd = "pjstat"
    verbose = expand = history = False
    days: int | None = None
    choose: list[str] | None = None
    targets: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-v":
            verbose = True
        elif a == "-E":
            expand = True
        elif a == "-H":
            history = True
            if i + 1 < len(argv) and argv[i + 1].startswith("day="):
                i += 1
                days = _parse_day(argv[i])
                if days is None:
                    return err(cmd, "0007", f"Invalid option value ({argv[i]}).")
        elif a.startswith("-H") and a[2:].startswith("day="):
            history = True
            days = _parse_day(a[2:])
            if days is None:
                return err(cmd, "0007", f"Invalid option value ({a[2:]}).")
        elif a == "--choose" or a.startswith("--choose="):
            if "=" in a:
                val = a.split("=", 1)[1]
            elif i + 1 < len(argv):
                i += 1
                val = argv[i]
            else:
                return err(cmd, "0007", "Option --choose requires an argument.")
            choose = [c.strip() for c in val.split(",") if c.strip()]
            bad = [c for c in choose if c not in CHOOSE]
            if bad or not choose:
                return err(cmd, "0007", f"Invalid item for --choose ({','.join(bad)}).")
        elif a.startswith("-") and len(a) > 1:
            return err(cmd, "0007", f"Invalid option ({a}).")
        else:
            if _parse_target(a) is None:
                return err(cmd, "0007", f"Invalid job id ({a}).")
            targets.append(a)
        i += 1

    cols = choose or (VERBOSE_COLS if verbose else DEFAULT_COLS)
    h = home()
    with locked(h):
        reap_orphans(h)
        jobs = {j["id"]: j for j in all_jobs(h)}

    now = time.time()

    def wanted(row: Sub) -> bool:
        if history:
            if row["st"] not in ENDED:
                return False
            return days is None or (row.get("end") or now) >= now - days * 86400
        return row["st"] not in ENDED

    rows: list[tuple[Sub, Job]] = []
    seen: set[str] = set()

    def add(row: Sub, job: Job) -> None:
        if row["key"] not in seen and wanted(row):
            seen.add(row["key"])
            rows.append((row, job))

    def add_job(job: Job) -> None:
        add(_parent_view(job), job)
        if expand and job["md"] != "NM":
            for s in job["subs"]:
                add(s, job)

    if targets:
        for t in targets:
            parsed = _parse_target(t)
            assert parsed is not None
            jid, subkey = parsed
            job = jobs.get(jid)
            if job is None:
                continue
            if subkey is None:
                add_job(job)
            else:
                for s in job["subs"]:
                    if s["key"] == subkey:
                        add(s, job)
    else:
        for job in jobs.values():
            add_job(job)

    if not rows:
        return 0
    table = [[CHOOSE[c] for c in cols]] + [[_cell(c, r, j) for c in cols] for r, j in rows]
    widths = [max(len(line[k]) for line in table) for k in range(len(cols))]
    for line in table:
        print("  ".join(v.ljust(widths[k]) for k, v in enumerate(line)).rstrip())
    sys.stdout.flush()
    return 0


def _parse_day(v: str) -> int | None:
    try:
        n = int(v.split("=", 1)[1])
    except (IndexError, ValueError):
        return None
    return n if n >= 0 else None


# --------------------------------------------------------------------------- pjdel


def pjdel_main(argv: list[str]) -> int:
    cmd = "pjdel"
    targets = []
    for a in argv:
        if a.startswith("-") and len(a) > 1:
            return err(cmd, "0007", f"Invalid option ({a}).")
        targets.append(a)
    if not targets:
        return err(cmd, "0007", "No job id is specified.")
    rc = 0
    h = home()
    for t in targets:
        parsed = _parse_target(t)
        if parsed is None:
            rc = err(cmd, "0007", f"Invalid job id ({t}).")
            continue
        jid, subkey = parsed
        with locked(h):
            reap_orphans(h)
            job = load_job(h, jid)
            subs = []
            if job is not None:
                subs = [s for s in job["subs"] if subkey is None or s["key"] == subkey]
            live = [s for s in subs if s["st"] not in ENDED]
            if job is None or not subs:
                rc = err(cmd, "0120", f"Job {t} does not exist.")
                continue
            if not live:
                rc = err(cmd, "0121", f"Job {t} has already ended.")
                continue
            assert job is not None
            if subkey is None:
                job["cancelled"] = True
            for s in live:
                s["cancel"] = "pjdel"
                if s["st"] == "QUE":
                    finish(s, "CCL", 0, PC_PJDEL)
                elif s.get("pgid"):
                    with contextlib.suppress(OSError):
                        os.killpg(s["pgid"], signal.SIGTERM)
            save_job(h, job)
        info(cmd, "0100", f"Accepted job {t}.")
    return rc


# --------------------------------------------------------------------------- entry

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--run":
        sys.exit(runner_main(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    print("usage: use the pjsub, pjstat and pjdel commands beside this file", file=sys.stderr)
    sys.exit(2)
