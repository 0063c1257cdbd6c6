"""The PJM stand-in (tests/standins/pjm/bin): real jobs, PJM's formats, WHEEL's regexes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parent / "pjm" / "bin"

# WHEEL's Fugaku/TCS definitions (shared/notes/wheel-features.md §4.2, §4.3), verbatim.
OW_RE_JOB_ID = r"pjsub Job (\d+_*\d*) submitted."
OW_RE_RUNNING = r"{{ JOBID }} *(?:ACC|HLD|QUE|RNA|RNE|RNO|RNP|RSM|RUN|SPD|SPP)"
OW_RE_RETURN_CODE = r"{{ JOBID }} *(?:EXT|CCL) *(\d+) *\d+"
OW_RE_JOB_STATUS_CODE = r"{{ JOBID }} *(?:CCL|ERR|EXT|RJT) *\d+ *(\d+)"
OW_RE_SUB_RETURN_CODE = r"(?:\d+\[\d+\]) *(?:CCL|ERR|EXT|RJT) *(\d+) *\d+"
OW_RE_SUB_JOB_STATUS_CODE = r"(?:\d+\[\d+\]) *(?:CCL|ERR|EXT|RJT) *\d+ *(\d+)"
OW_RE_EXCEEDED = r"PJM 0072 pjsub Job exceeded the accept limit"
OW_ACCEPTABLE_JOB_STATUS = [0, 6]
W22_RE_FINISHED = (
    r"^JOB_ID *ST *EC *PC *\n(?:\d+|\d+_\d+) *(?:CCL|ERR|EXT|RJT) *(?:\d+|\S+) *(?:\d+|\S+)"
)
W22_RE_RETURN_CODE = (
    r"^JOB_ID *ST *EC *PC *\n(?:\d+|\d+_\d+|\d+\[\d+\]) *(?:EXT|CCL) *(\d+) *(?:\d+)"
)
W22_RE_JOB_STATUS_CODE = (
    r"^JOB_ID *ST *EC *PC *\n(?:\d+|\d+_\d+|\d+\[\d+\]) *(?:CCL|ERR|EXT|RJT) *\d+ *(\d+)"
)
TCS_RE_FINISHED = r"^JOB_ID *ST *EC *PC *\n(?:\d+|\d+_\d+) *(?:CCL|ERR|EXT|RJT) *\d+ *\d+"

# WHEEL's commands (OW stat/statAfter/bulkstat/bulkstatAfter, W22 stat pair).
STAT = ["-v", "--choose", "jid,st"]
STAT_AFTER = ["-v", "-H", "day=3", "--choose", "jid,st,ec,pc"]
BULKSTAT = ["-E", "-v", "--choose", "jid,st"]
BULKSTAT_AFTER = ["-E", "-v", "-H", "day=3", "--choose", "jid,st,ec,pc"]
W22_STAT_CURRENT = ["-v", "--choose", "jid,st,ec,pc"]


def with_id(regex: str, job_id: str) -> str:
    """OW's substitution of ``{{ JOBID }}`` (the id is inserted as it is)."""
    return regex.replace("{{ JOBID }}", job_id)


class PJM:
    """Runs the stand-in's commands with an isolated state directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "pjm-home"
        self.workdir = tmp_path / "work"
        self.workdir.mkdir()
        pydir = str(Path(sys.executable).parent)  # a real python3, not a slow shim
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PJM_", "PJM_STANDIN_"))
        }
        self.env["PATH"] = os.pathsep.join([str(BIN), pydir, os.environ.get("PATH", "")])
        self.env["PJM_STANDIN_HOME"] = str(self.home)
        self.env["PJM_STANDIN_KILL_GRACE"] = "0.5"

    def run(
        self, cmd: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cmd, *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def script(self, name: str, body: str, *, shebang: str = "#!/bin/sh") -> str:
        (self.workdir / name).write_text(f"{shebang}\n{body}\n")
        return name

    def submit(self, *args: str, env: dict[str, str] | None = None) -> str:
        r = self.run("pjsub", *args, env=env)
        assert r.returncode == 0, r.stderr
        m = re.search(OW_RE_JOB_ID, r.stdout)
        assert m, r.stdout
        return m.group(1)

    def stat(self, *args: str) -> str:
        r = self.run("pjstat", *args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def ended(self, *ids: str, timeout: float = 15.0) -> dict[str, tuple[str, int, int]]:
        """Poll WHEEL's statAfter until every id has a history row; return id -> (ST, EC, PC)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = rows_of(self.stat(*BULKSTAT_AFTER, *ids))
            if all(i in rows for i in ids):
                return {k: (st, int(ec), int(pc)) for k, (st, ec, pc) in rows.items()}
            assert time.monotonic() < deadline, f"{ids} not ended: {rows}"
            time.sleep(0.1)

    def wait_state(self, job_id: str, states: tuple[str, ...], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rows = rows_of(self.stat(*BULKSTAT, job_id))
            if job_id in rows and rows[job_id][0] in states:
                return
            assert time.monotonic() < deadline, f"{job_id} never in {states}: {rows}"
            time.sleep(0.05)

    def go(self, name: str = "go") -> None:
        (self.workdir / name).write_text("")

    def cleanup(self) -> None:
        """End whatever a failed test left running (only processes this test started)."""
        for path in (self.home / "jobs").glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                job = json.loads(path.read_text())
                for s in job["subs"]:
                    if s["st"] in ("EXT", "CCL", "ERR", "RJT"):
                        continue
                    for pid, kill in ((s.get("pgid"), os.killpg), (s.get("runner_pid"), os.kill)):
                        if pid:
                            with contextlib.suppress(OSError):
                                kill(pid, signal.SIGKILL)


def rows_of(output: str) -> dict[str, tuple[str, ...]]:
    """``JOB_ID ST [EC PC]`` rows by job id (the header line is skipped)."""
    lines = output.splitlines()
    return {ln.split()[0]: tuple(ln.split()[1:]) for ln in lines[1:] if ln.strip()}


WAIT_GO = "while [ ! -f go ]; do sleep 0.02; done"


@pytest.fixture
def pjm(tmp_path: Path) -> Iterator[PJM]:
    p = PJM(tmp_path)
    yield p
    p.cleanup()


def test_normal_job_runs_and_reports_like_pjm(pjm: PJM) -> None:
    pjm.script(
        "job.sh",
        f"{WAIT_GO}\n"
        'echo "id=$PJM_JOBID name=$PJM_JOBNAME wd=$PJM_O_WORKDIR pwd=$(pwd)"\n'
        "echo oops >&2\nexit 3",
    )
    r = pjm.run("pjsub", "job.sh")
    assert r.returncode == 0
    assert re.fullmatch(r"\[INFO\] PJM 0000 pjsub Job \d+ submitted\.\n", r.stdout)
    jid = re.search(OW_RE_JOB_ID, r.stdout).group(1)  # type: ignore[union-attr]

    # Current jobs: the documented default table, then WHEEL's stat.
    out = pjm.stat()
    assert out.splitlines()[0].split() == [
        "JOB_ID", "JOB_NAME", "MD", "ST", "USER", "START_DATE", "ELAPSE_LIM",
        "NODE_REQUIRE", "VNODE", "CORE", "V_MEM",
    ]  # fmt: skip
    assert out.splitlines()[1].split()[:3] == [jid, "job.sh", "NM"]
    pjm.wait_state(jid, ("RUN",))
    running = pjm.stat(*STAT, jid)
    assert running.startswith("JOB_ID  ST\n")
    assert re.search(with_id(OW_RE_RUNNING, jid), running)
    assert pjm.stat(*STAT_AFTER, jid) == ""  # not in the history yet
    assert not re.match(W22_RE_FINISHED, pjm.stat(*W22_STAT_CURRENT, jid))

    pjm.go()
    assert pjm.ended(jid)[jid] == ("EXT", 3, 0)
    assert pjm.stat(*STAT, jid) == ""  # gone from the current jobs: prints nothing at all
    after = pjm.stat(*STAT_AFTER, jid)
    assert not re.search(with_id(OW_RE_RUNNING, jid), after)
    assert re.search(with_id(OW_RE_RETURN_CODE, jid), after).group(1) == "3"  # type: ignore[union-attr]
    assert re.search(with_id(OW_RE_JOB_STATUS_CODE, jid), after).group(1) == "0"  # type: ignore[union-attr]
    # W22 runs "current ; history" as one command: the current part prints nothing.
    w22 = pjm.stat(*W22_STAT_CURRENT, jid) + after
    assert re.match(W22_RE_FINISHED, w22)
    assert re.match(W22_RE_RETURN_CODE, w22).group(1) == "3"  # type: ignore[union-attr]
    assert re.match(W22_RE_JOB_STATUS_CODE, w22).group(1) == "0"  # type: ignore[union-attr]
    assert re.match(TCS_RE_FINISHED, after)

    out_file = pjm.workdir / f"job.sh.{jid}.out"
    wd = pjm.workdir
    assert out_file.read_text() == f"id={jid} name=job.sh wd={wd} pwd={wd}\n"
    assert (pjm.workdir / f"job.sh.{jid}.err").read_text() == "oops\n"
    # -H without day=, and -v without --choose, show the ended job too.
    assert jid in rows_of(pjm.stat("-H"))
    verbose = pjm.stat("-H", "-v", jid).splitlines()
    header, row = verbose[0], verbose[1]  # columns are left-aligned under their headers
    assert row[header.index(" EC ") + 1 :].split()[:2] == ["3", "0"]
    assert pjm.stat("12345") == "" and pjm.stat("-H", "12345") == ""


def test_environment_is_minimal_without_x_and_inherited_with_x(pjm: PJM) -> None:
    pjm.script("env.sh", 'echo "foo=${FOO:-unset} user=$USER home=$HOME lang=${LANG:-}"')
    extra = {"FOO": "bar", "LANG": "C.UTF-8"}
    plain = pjm.submit("env.sh", env=extra)
    with_x = pjm.submit("-X", "env.sh", env=extra)
    with_small_x = pjm.submit("-x", "FOO=baz", "env.sh", env=extra)
    pjm.ended(plain, with_x, with_small_x)
    plain_out = (pjm.workdir / f"env.sh.{plain}.out").read_text()
    assert plain_out.startswith("foo=unset user=") and "home=/" in plain_out
    assert plain_out.endswith("lang=C.UTF-8\n")
    assert (pjm.workdir / f"env.sh.{with_x}.out").read_text().startswith("foo=bar ")
    assert (pjm.workdir / f"env.sh.{with_small_x}.out").read_text().startswith("foo=baz ")


def test_directives_options_and_command_line_precedence(pjm: PJM) -> None:
    pjm.script(
        "dir.sh",
        '#PJM -L "rscgrp=small,node=2"\n#PJM -N from_directive\n#PJM -j  # merge stderr\n'
        "echo out; echo err >&2",
    )
    a = pjm.submit("dir.sh")
    b = pjm.submit("-L", "rscgrp=large", "-N", "cli", "-o", "b.out", "dir.sh")
    assert pjm.ended(a, b)[a] == ("EXT", 0, 0)
    rows = rows_of(pjm.stat("-H", "-v", "--choose", "jid,jnam,rscg,nnumr", a, b))
    assert rows[a] == ("from_directive", "small", "2")
    assert rows[b] == ("cli", "large", "2")
    assert (pjm.workdir / f"from_directive.{a}.out").read_text() == "out\nerr\n"
    assert not (pjm.workdir / f"from_directive.{a}.err").exists()
    assert (pjm.workdir / "b.out").read_text() == "out\nerr\n"
    # -z prints only the id; a script that is not executable still runs (spooled, run by sh).
    (pjm.workdir / "noexec.sh").write_text("exit 5\n")
    r = pjm.run("pjsub", "-z", "jid", "noexec.sh")
    assert r.returncode == 0 and re.fullmatch(r"\d+\n", r.stdout)
    assert pjm.ended(r.stdout.strip())[r.stdout.strip()] == ("EXT", 5, 0)


def test_bad_submissions_are_rejected_without_creating_a_job(pjm: PJM) -> None:
    pjm.script("ok.sh", "true")
    for args in (
        ["-q", "x", "ok.sh"],
        ["missing.sh"],
        ["--bulk", "ok.sh"],
        ["-L", "elapse=x", "ok.sh"],
    ):
        r = pjm.run("pjsub", *args)
        assert r.returncode != 0, args
        assert r.stdout == "" and r.stderr.startswith("[ERR.] PJM "), r.stderr
    assert not list((pjm.home / "jobs").glob("*.json"))
    r = pjm.run("pjstat", "--bogus")
    assert r.returncode != 0 and r.stderr.startswith("[ERR.] PJM ")


def test_elapse_limit_kills_the_job(pjm: PJM) -> None:
    pjm.script("long.sh", "echo started; sleep 30")
    jid = pjm.submit("-L", "rscgrp=small,elapse=0:01", "long.sh")
    assert pjm.stat(*STAT, jid)  # still there at first
    start = time.monotonic()
    st, ec, pc = pjm.ended(jid)[jid]
    assert time.monotonic() - start < 5
    assert (st, pc) == ("EXT", 11) and ec == 128 + signal.SIGTERM
    assert rows_of(pjm.stat("-H", "-v", "--choose", "jid,elpl,sn", jid))[jid] == (
        "0000:00:01",
        "15",
    )
    assert pc not in OW_ACCEPTABLE_JOB_STATUS


def test_accept_limit(pjm: PJM) -> None:
    pjm.script("w.sh", WAIT_GO)
    limit = {"PJM_STANDIN_ACCEPT_LIMIT": "2"}
    first = pjm.submit("w.sh", env=limit)
    pjm.submit("w.sh", env=limit)
    r = pjm.run("pjsub", "w.sh", env=limit)
    assert r.returncode != 0
    assert re.search(OW_RE_EXCEEDED, r.stderr) and r.stderr.startswith("[ERR.] PJM 0072 pjsub ")
    r = pjm.run("pjsub", "--bulk", "--sparam", "0-1", "w.sh", env={"PJM_STANDIN_ACCEPT_LIMIT": "3"})
    assert r.returncode != 0  # two sub jobs do not fit into one free place
    pjm.run("pjdel", first)
    pjm.ended(first)
    assert pjm.run("pjsub", "w.sh", env=limit).returncode == 0


def test_slots_limit_how_many_jobs_run_at_once(pjm: PJM) -> None:
    pjm.script("s.sh", f'echo "start $PJM_JOBID" >> log\n{WAIT_GO}\necho "end $PJM_JOBID" >> log')
    one = {"PJM_STANDIN_SLOTS": "1"}
    a = pjm.submit("s.sh", env=one)
    b = pjm.submit("s.sh", env=one)
    pjm.wait_state(a, ("RUN",))
    assert rows_of(pjm.stat(*STAT, b))[b] == ("QUE",)
    assert re.search(with_id(OW_RE_RUNNING, b), pjm.stat(*STAT, b))
    pjm.go()
    pjm.ended(a, b)
    log = (pjm.workdir / "log").read_text().split("\n")
    assert log[:4] == [f"start {a}", f"end {a}", f"start {b}", f"end {b}"]


def test_bulk_job(pjm: PJM) -> None:
    pjm.script("bulk.sh", f'{WAIT_GO}\necho "n=$PJM_BULKNUM sub=$PJM_SUBJOBID"\nexit $PJM_BULKNUM')
    r = pjm.run("pjsub", "--bulk", "--sparam", "0-2", "bulk.sh")
    assert re.fullmatch(r"\[INFO\] PJM 0000 pjsub Job \d+ submitted\.\n", r.stdout)
    jid = re.search(OW_RE_JOB_ID, r.stdout).group(1)  # type: ignore[union-attr]
    assert rows_of(pjm.stat())[jid][:2] == ("bulk.sh", "BU")
    pjm.wait_state(jid, ("RUN",))
    running = pjm.stat(*BULKSTAT, jid)
    assert list(rows_of(running)) == [jid, f"{jid}[0]", f"{jid}[1]", f"{jid}[2]"]
    assert re.search(with_id(OW_RE_RUNNING, jid), running)
    assert list(rows_of(pjm.stat(jid))) == [jid]  # without -E: only the bulk job itself
    assert list(rows_of(pjm.stat(f"{jid}[1]"))) == [f"{jid}[1]"]

    pjm.go()
    rows = pjm.ended(jid, f"{jid}[0]", f"{jid}[1]", f"{jid}[2]")
    assert [rows[f"{jid}[{i}]"] for i in range(3)] == [("EXT", i, 0) for i in range(3)]
    after = pjm.stat(*BULKSTAT_AFTER, jid)
    assert not re.search(with_id(OW_RE_RUNNING, jid), pjm.stat(*BULKSTAT, jid))
    assert re.findall(OW_RE_SUB_RETURN_CODE, after) == ["0", "1", "2"]
    assert re.findall(OW_RE_SUB_JOB_STATUS_CODE, after) == ["0", "0", "0"]
    assert re.search(with_id(OW_RE_RETURN_CODE, jid), after).group(1) == "2"  # type: ignore[union-attr]
    assert re.match(W22_RE_RETURN_CODE, after).group(1) == "2"  # type: ignore[union-attr]
    for i in range(3):
        out = (pjm.workdir / f"bulk.sh.{jid}[{i}].out").read_text()
        assert out == f"n={i} sub={jid}[{i}]\n"


def test_step_job_with_jid_runs_in_step_order(pjm: PJM) -> None:
    pjm.script("s.sh", f'{WAIT_GO}\necho "$PJM_SUBJOBID" >> order\nsleep 0.1')
    r = pjm.run("pjsub", "--step", "s.sh")
    assert re.fullmatch(r"\[INFO\] PJM 0000 pjsub Job \d+_0 submitted\.\n", r.stdout)
    first = re.search(OW_RE_JOB_ID, r.stdout).group(1)  # type: ignore[union-attr]
    jid = first.split("_")[0]
    assert pjm.submit("--step", "--sparam", f"jid={jid}", "s.sh") == f"{jid}_1"
    assert pjm.submit("--step", "--sparam", f"jid={jid},sn=5", "s.sh") == f"{jid}_5"
    r = pjm.run("pjsub", "--step", "--sparam", f"jid={jid},sn=1", "s.sh")
    assert r.returncode != 0  # step number already used
    rows = rows_of(pjm.stat())
    assert rows[jid][:2] == ("s.sh", "ST") and f"{jid}_1" not in rows
    assert list(rows_of(pjm.stat("-E"))) == [jid, f"{jid}_0", f"{jid}_1", f"{jid}_5"]
    assert rows_of(pjm.stat(*STAT, f"{jid}_5"))[f"{jid}_5"] == ("QUE",)
    pjm.go()
    rows = pjm.ended(f"{jid}_0", f"{jid}_1", f"{jid}_5")
    assert set(rows.values()) == {("EXT", 0, 0)}
    assert (pjm.workdir / "order").read_text().split() == [f"{jid}_0", f"{jid}_1", f"{jid}_5"]
    assert (pjm.workdir / f"s.sh.{jid}_1.out").exists()
    for sub in (f"{jid}_0", f"{jid}_5"):
        w22 = pjm.stat(*W22_STAT_CURRENT, sub) + pjm.stat(*STAT_AFTER, sub)
        assert re.match(W22_RE_FINISHED, w22) and re.match(TCS_RE_FINISHED, w22)
        assert re.match(W22_RE_RETURN_CODE, w22).group(1) == "0"  # type: ignore[union-attr]
    # The step job has ended: joining it by id is an error, no job is created.
    r = pjm.run("pjsub", "--step", "--sparam", f"jid={jid}", "s.sh")
    assert r.returncode != 0 and r.stderr.startswith("[ERR.] PJM ")


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("", [("EXT", 1, 0), ("CCL", 0, 6), ("EXT", 0, 0), ("EXT", 0, 0)]),
        (":after", [("EXT", 1, 0), ("CCL", 0, 6), ("CCL", 0, 6), ("CCL", 0, 6)]),
        (":all:0", [("EXT", 1, 0), ("CCL", 0, 6), ("CCL", 0, 6), ("CCL", 0, 6)]),
    ],
)
def test_step_job_by_name_with_dependency_statement(
    pjm: PJM, dtype: str, expected: list[tuple[str, int, int]]
) -> None:
    pjm.script("s0.sh", f"{WAIT_GO}\nexit 1")
    pjm.script("s.sh", 'echo "ran $PJM_SUBJOBID"')
    # WHEEL's form: --step --sparam "jnam=<stepjob name>,sn=<n>[,<dependencyForm>]"
    ids = [pjm.submit("-X", "--step", "--sparam", "jnam=sj,sn=0", "s0.sh")]
    jid = ids[0].split("_")[0]
    ids.append(pjm.submit("--step", "--sparam", f"jnam=sj,sn=1,sd=ec!=0{dtype}", "s.sh"))
    ids.append(pjm.submit("--step", "--sparam", "jnam=sj,sn=2", "s.sh"))
    ids.append(pjm.submit("--step", "--sparam", "jnam=sj,sn=3,sd=ec==5", "s.sh"))
    assert ids == [f"{jid}_{n}" for n in range(4)]
    assert rows_of(pjm.stat("-v", "--choose", "jid,jnam", jid))[jid] == ("sj",)
    pjm.go()
    rows = pjm.ended(*ids)
    assert [rows[i] for i in ids] == expected
    for i, (st, _, pc) in zip(ids, expected, strict=True):
        after = pjm.stat(*STAT_AFTER, i)
        status = re.search(with_id(OW_RE_JOB_STATUS_CODE, i), after)
        assert status and int(status.group(1)) == pc
        assert (int(status.group(1)) in OW_ACCEPTABLE_JOB_STATUS) == (pc in (0, 6))
        assert re.match(TCS_RE_FINISHED, after)
        assert (pjm.workdir / f"sj.{i}.out").exists() == (st == "EXT")
    # A jnam of an ended step job starts a new step job.
    again = pjm.submit("--step", "--sparam", "jnam=sj,sn=0", "s.sh")
    assert again != ids[0] and again.endswith("_0")


def test_one_slot_runs_the_jobs_in_the_order_they_were_submitted(pjm: PJM) -> None:
    """First come, first served: each job's runner races for the slot, and the first job
    submitted still runs first however the runners start."""
    one = {"PJM_STANDIN_SLOTS": "1"}
    pjm.script("o.sh", f'{WAIT_GO}\necho "$PJM_JOBID" >> order')
    ids = [pjm.submit("o.sh", env=one) for _ in range(4)]
    pjm.wait_state(ids[0], ("RUN",))
    assert {
        i: st for i, (st, *_) in rows_of(pjm.stat(*BULKSTAT, *ids[1:])).items()
    } == dict.fromkeys(ids[1:], "QUE")
    pjm.go()
    pjm.ended(*ids, timeout=30)
    assert (pjm.workdir / "order").read_text().split() == ids


def test_pjdel_queued_running_and_sub_jobs(pjm: PJM) -> None:
    one = {"PJM_STANDIN_SLOTS": "1"}
    pjm.script("t.sh", 'trap "echo term; exit 7" TERM\necho up\nsleep 30 &\nwait')
    running = pjm.submit("t.sh", env=one)
    queued = pjm.submit("t.sh", env=one)
    pjm.wait_state(running, ("RUN",))
    out = pjm.workdir / f"t.sh.{running}.out"
    deadline = time.monotonic() + 5
    while out.read_text() != "up\n":  # the trap is set once "up" is printed
        assert time.monotonic() < deadline
        time.sleep(0.02)
    r = pjm.run("pjdel", queued, running)
    assert r.returncode == 0
    assert r.stdout == (
        f"[INFO] PJM 0100 pjdel Accepted job {queued}.\n"
        f"[INFO] PJM 0100 pjdel Accepted job {running}.\n"
    )
    rows = pjm.ended(queued, running)
    assert rows[queued] == ("CCL", 0, 1)
    assert rows[running] == ("CCL", 7, 1)
    assert not (pjm.workdir / f"t.sh.{queued}.out").exists()  # never ran
    assert (pjm.workdir / f"t.sh.{running}.out").read_text() == "up\nterm\n"
    after = pjm.stat(*STAT_AFTER, running)
    assert re.search(with_id(OW_RE_RETURN_CODE, running), after).group(1) == "7"  # type: ignore[union-attr]
    assert re.search(with_id(OW_RE_JOB_STATUS_CODE, running), after).group(1) == "1"  # type: ignore[union-attr]
    again = pjm.run("pjdel", running, "99999")
    assert again.returncode != 0 and again.stderr.count("[ERR.] PJM ") == 2

    # Bulk: one sub job, then the whole job.  A sub job that ignores SIGTERM gets SIGKILL.
    pjm.script("b.sh", f'trap "" TERM\n{WAIT_GO}\nexit 0')
    bulk = pjm.submit("--bulk", "--sparam", "0-2", "b.sh")
    pjm.wait_state(f"{bulk}[2]", ("RUN",))
    assert (
        pjm.run("pjdel", f"{bulk}[1]").stdout == f"[INFO] PJM 0100 pjdel Accepted job {bulk}[1].\n"
    )
    assert pjm.ended(f"{bulk}[1]")[f"{bulk}[1]"] == ("CCL", 128 + signal.SIGKILL, 1)
    assert rows_of(pjm.stat(*BULKSTAT, bulk))[bulk] == ("RUN",)
    assert pjm.run("pjdel", bulk).returncode == 0
    rows = pjm.ended(bulk, f"{bulk}[0]", f"{bulk}[2]")
    assert rows[bulk][0] == "CCL" and rows[f"{bulk}[0]"][0] == rows[f"{bulk}[2]"][0] == "CCL"


def test_job_survives_its_caller_being_killed(pjm: PJM) -> None:
    pjm.script("j.sh", "sleep 0.5\necho done")
    caller = subprocess.Popen(
        ["sh", "-c", "pjsub j.sh; sleep 30"],
        cwd=pjm.workdir,
        env=pjm.env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert caller.stdout is not None
        jid = re.search(OW_RE_JOB_ID, caller.stdout.readline()).group(1)  # type: ignore[union-attr]
        os.killpg(caller.pid, signal.SIGKILL)
        caller.wait(timeout=10)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(caller.pid, signal.SIGKILL)
        if caller.stdout is not None:
            caller.stdout.close()
    assert pjm.ended(jid)[jid] == ("EXT", 0, 0)
    assert (pjm.workdir / f"j.sh.{jid}.out").read_text() == "done\n"
