"""The LSF stand-in (tests/standins/lsf/bin): LSF's formats, and sharin running a bulk job
(one job array) and a step job (a chain of dependent jobs) through it (a plain task:
test_standins.py)."""

from __future__ import annotations

import sharin
from sharin import Project
from sharin.engine import JobHandle

from ..helpers import journal_tasks, lines, log_line
from .conftest import Lsf


def test_bsub_bjobs_formats(lsf: Lsf) -> None:
    script = "#!/bin/sh\n#BSUB -o out.%J\necho hello\nexit 3\n"
    sub = lsf.run("bsub", stdin=script)
    assert sub.returncode == 0
    job = sub.stdout.split("<")[1].split(">")[0]
    assert sub.stdout == f"Job <{job}> is submitted to queue <normal>.\n"
    ok = lsf.run("bsub", "-q", "short", "true")
    other = ok.stdout.split("<")[1].split(">")[0]
    assert ok.stdout.endswith("queue <short>.\n")
    assert lsf.wait_ended(job, other).splitlines() == [
        f"{job:<7} 0        EXIT  3",
        f"{other:<7} 0        DONE  -",  # LSF shows no exit code for 0
    ]
    assert (lsf.workdir / f"out.{job}").read_text() == "hello\n"
    missing = lsf.run("bjobs", "-a", "-noheader", "-o", "jobid stat exit_code", job, "99999")
    assert missing.returncode == 255 and missing.stderr == "Job <99999> is not found\n"
    assert missing.stdout.split() == [job, "EXIT", "3"]
    # without -a an ended job is not shown (LSB_BJOBS_CONSISTENT_EXIT_CODE=N: exit 0)
    plain = lsf.run("bjobs", job)
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, "", "No unfinished job found\n")
    header = lsf.run("bjobs", "-a", job).stdout.splitlines()[0].split()
    assert header == [
        "JOBID",
        "USER",
        "STAT",
        "QUEUE",
        "FROM_HOST",
        "EXEC_HOST",
        "JOB_NAME",
        "SUBMIT_TIME",
    ]
    hist = lsf.run("bhist", job).stdout.splitlines()
    assert hist[0] == "Summary of time in seconds spent in various states:"
    assert hist[1].split()[:4] == ["JOBID", "USER", "JOB_NAME", "PEND"]
    assert hist[2].split()[0] == job


def test_job_arrays_dependencies_and_bkill(lsf: Lsf) -> None:
    arr = lsf.run("bsub", "-J", "a[1-3]", stdin="#!/bin/sh\nexit $((LSB_JOBINDEX - 1))\n")
    aid = arr.stdout.split("<")[1].split(">")[0]
    # done() can never hold once an element failed: -ti ends the job at once
    dep = lsf.run("bsub", "-w", f"done({aid})", "-ti", "true").stdout.split("<")[1].split(">")[0]
    anyway = lsf.run("bsub", "-w", f"ended({aid})", "true").stdout.split("<")[1].split(">")[0]
    assert lsf.wait_ended(aid, dep, anyway).splitlines() == [
        f"{aid:<7} 1        DONE  -",
        f"{aid:<7} 2        EXIT  1",
        f"{aid:<7} 3        EXIT  2",
        f"{dep:<7} 0        EXIT  -",
        f"{anyway:<7} 0        DONE  -",
    ]
    assert lsf.run("bsub", "-J", "b[0-2]", "true").stderr == "Bad job name. Job not submitted.\n"
    bad = lsf.run("bsub", "-w", "done(99999)", "true")
    assert bad.returncode == 255 and "No matching job found" in bad.stderr
    long = lsf.run("bsub", "sleep", "30").stdout.split("<")[1].split(">")[0]
    killed = lsf.run("bkill", long)
    assert killed.stdout == f"Job <{long}> is being terminated\n"
    assert lsf.wait_ended(long).split()[2] == "EXIT"
    again = lsf.run("bkill", long)
    assert again.returncode == 255 and again.stderr == f"Job <{long}>: Job has already finished\n"


# ---------------------------------------------------------------------- sharin through it
def test_a_bulk_job_is_one_lsf_job_array(project: Project, lsf: Lsf) -> None:
    lsf.host()
    c = sharin.add_component(
        project,
        "bulkjobTask",
        "bulk",
        script="run.sh",
        host="lsf",
        useJobScheduler=True,
        usePSSettingFile=False,
        startBulkNumber=0,
        endBulkNumber=3,
    )
    (c.directory / "run.sh").write_text(
        '#!/bin/sh\necho "$PJM_BULKNUM $LSB_JOBINDEX" > "out.$PJM_BULKNUM"\nexit "$PJM_BULKNUM"\n'
    )

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    [job] = lsf.jobs()
    assert job["name"] == "bulk" and [e["index"] for e in job["elements"]] == [1, 2, 3, 4]  # type: ignore[index]
    assert [(c.directory / f"out.{n}").read_text() for n in range(4)] == [
        f"{n} {n + 1}\n" for n in range(4)
    ]
    assert (c.directory / "subjob_status.wheel.txt").read_text().splitlines() == [
        x
        for n in range(4)
        for x in (f"RT_{n}={n}", f"JOBSTATUS_{n}={'DONE' if n == 0 else 'EXIT'}")
    ]


def test_a_step_job_is_a_chain_of_lsf_jobs(project: Project, lsf: Lsf) -> None:
    lsf.host()
    sharin.add_component(project, "stepjob", "sj", host="lsf")
    bodies = {"s0": "exit 1", "s1": "true", "s2": "true"}
    for n, body in bodies.items():
        c = sharin.add_component(project, "stepjobTask", n, parent="sj", script="run.sh")
        (c.directory / "run.sh").write_text("#!/bin/sh\n" + log_line(n) + body + "\n")
    sharin.connect(project, "sj/s0", "sj/s1")
    sharin.connect(project, "sj/s1", "sj/s2")
    sharin.set_property(project, "sj/s0", "ignoreFailure", True)
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec!=0")  # one: s2 still runs

    result = sharin.run(project)

    assert lines(project.root / "ran.log") == ["s0", "s2"]
    tasks = journal_tasks(project.root, 1)
    assert tasks["sj/s1"].state == "finished"
    assert "dependency statement deleted it" in (tasks["sj/s1"].message or "")
    assert tasks["sj"].state == "finished" and result.state == "failed"
    ids = [JobHandle.from_json(tasks[f"sj/{n}"].handle or "").native_id for n in bodies]
    deps = [j["deps"] for j in lsf.jobs()]
    assert deps == [[], [["ok", int(ids[0])]], [["any", int(ids[1])]]]
