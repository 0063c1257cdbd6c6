"""The PBS Pro stand-in (tests/standins/pbspro/bin): PBS Pro's formats with job history, and sharin
running a bulk job (one ``-J`` job array) and a step job (``-W depend`` chain) through it (a plain
task: test_standins.py)."""

from __future__ import annotations

import time

import sharin
from sharin import Project
from sharin.engine import JobHandle
from sharin.executors import load_schedulers

from ..conftest import Processes
from ..helpers import journal_tasks, lines, log_line, wait_for
from .conftest import PBS_SERVER as SERVER
from .conftest import Pbs


def attrs(block: str) -> dict[str, str]:
    out = {}
    for line in block.splitlines():
        if line.startswith("    ") and " = " in line:
            k, _, v = line.strip().partition(" = ")
            out[k] = v
    return out


def blocks(text: str) -> dict[str, dict[str, str]]:
    out = {}
    for b in text.strip().split("\n\n"):
        first = b.splitlines()[0]
        out[first.removeprefix("Job Id: ")] = attrs(b)
    return out


# ---------------------------------------------------------------------- the commands themselves
def test_qsub_qstat_with_history(pbs: Pbs) -> None:
    job = pbs.run("qsub", pbs.script("a.sh", "echo out; exit 3")).stdout.strip()
    assert job.endswith(f".{SERVER}") and job.split(".")[0].isdigit()
    num = job.split(".")[0]
    found = blocks(pbs.full(num))[job]
    assert (found["job_state"], found["substate"], found["Exit_status"]) == ("F", "92", "3")
    assert (pbs.workdir / f"a.sh.o{num}").read_text() == "out\n"
    gone = pbs.run("qstat", num)
    assert gone.returncode == 35 and "Job has finished, use -x" in gone.stderr
    unknown = pbs.run("qstat", "-x", "-f", num, "99999")
    assert unknown.returncode == 153 and unknown.stderr == f"qstat: Unknown Job Id 99999.{SERVER}\n"
    assert f"Job Id: {job}" in unknown.stdout  # the others are still printed
    # the parser sharin uses reads it, one pass for every job
    family = load_schedulers()["PBSPro"].family
    assert family is not None
    assert family.parse(unknown.stdout)[num].returncode == 3


def test_arrays_dependencies_and_qdel(pbs: Pbs) -> None:
    arr = pbs.run("qsub", "-J", "0-2", pbs.script("arr.sh", 'exit "$PBS_ARRAY_INDEX"')).stdout
    assert arr.strip().endswith(f"[].{SERVER}")
    num = arr.split("[")[0]
    ok = pbs.run("qsub", "-W", f"depend=afterok:{num}[]", pbs.script("b.sh", "true")).stdout
    anyway = pbs.run("qsub", "-W", f"depend=afterany:{num}[]", pbs.script("c.sh", "true")).stdout
    table = blocks(pbs.full(f"{num}[]", ok.split(".")[0], anyway.split(".")[0]))
    assert table[f"{num}[].{SERVER}"]["job_state"] == "F"
    assert table[f"{num}[].{SERVER}"]["array_indices_submitted"] == "0-2"
    assert [table[f"{num}[{i}].{SERVER}"]["Exit_status"] for i in range(3)] == ["0", "1", "2"]
    assert {table[f"{num}[{i}].{SERVER}"]["job_state"] for i in range(3)} == {"X"}
    deleted = table[ok.strip()]
    assert (deleted["job_state"], deleted["substate"]) == (
        "F",
        "91",
    ) and "Exit_status" not in deleted
    assert table[anyway.strip()]["Exit_status"] == "0"
    after_deleted = pbs.run(
        "qsub", "-W", f"depend=afterany:{ok.strip()}", pbs.script("e.sh", "true")
    )
    gone = blocks(pbs.full(after_deleted.stdout.split(".")[0]))[after_deleted.stdout.strip()]
    assert (
        gone["substate"] == "91" and "Exit_status" not in gone
    )  # afterany: not after a deleted job
    assert pbs.run("qstat", "-x", num).returncode == 153  # an array is named with its brackets
    long = pbs.run("qsub", pbs.script("d.sh", "sleep 30")).stdout.strip()
    deadline = time.monotonic() + 60  # deleted while it runs (a queued one has no exit status)
    while "job_state = R" not in pbs.run("qstat", "-x", "-f", long.split(".")[0]).stdout:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.2)
    pbs.run("qdel", long.split(".")[0])
    killed = blocks(pbs.full(long.split(".")[0]))[long]
    assert killed["substate"] == "91" and killed["Exit_status"] in ("0", "271")
    again = pbs.run("qdel", long.split(".")[0])
    assert again.returncode == 35 and again.stderr == f"qdel: Job has finished {long}\n"


# ---------------------------------------------------------------------- sharin through it
def test_a_bulk_job_is_one_pbs_pro_job_array(project: Project, pbs: Pbs) -> None:
    pbs.host()
    c = sharin.add_component(
        project,
        "bulkjobTask",
        "bulk",
        script="run.sh",
        host="pbs",
        useJobScheduler=True,
        usePSSettingFile=False,
        startBulkNumber=0,
        endBulkNumber=3,
    )
    (c.directory / "run.sh").write_text(
        '#!/bin/sh\necho "$PJM_BULKNUM $PBS_ARRAY_INDEX" > "out.$PJM_BULKNUM"\n'
        '[ "$PJM_BULKNUM" != 2 ]\n'
    )

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    [job] = pbs.jobs()
    assert job["indices"] == "0-3"
    assert [(c.directory / f"out.{n}").read_text() for n in range(4)] == [
        f"{n} {n}\n" for n in range(4)
    ]
    assert (c.directory / "subjob_status.wheel.txt").read_text().splitlines() == [
        x for n in range(4) for x in (f"RT_{n}={1 if n == 2 else 0}", f"JOBSTATUS_{n}=92")
    ]


def test_a_step_job_is_a_chain_of_pbs_pro_jobs(project: Project, pbs: Pbs) -> None:
    pbs.host()
    sharin.add_component(project, "stepjob", "sj", host="pbs")
    bodies = {"s0": "true", "s1": "exit 2", "s2": "true"}
    for n, body in bodies.items():
        c = sharin.add_component(project, "stepjobTask", n, parent="sj", script="run.sh")
        (c.directory / "run.sh").write_text(
            '#!/bin/sh\ncd "$PBS_O_WORKDIR"\n' + log_line(n) + body + "\n"
        )
    sharin.connect(project, "sj/s0", "sj/s1")
    sharin.connect(project, "sj/s1", "sj/s2")
    sharin.set_property(project, "sj/s2", "useDependency", True)
    sharin.set_property(project, "sj/s2", "dependencyForm", "sd=ec==0")  # only after a failure

    result = sharin.run(project)

    assert lines(project.root / "ran.log") == ["s0", "s1", "s2"]
    tasks = journal_tasks(project.root, 1)
    assert [tasks[f"sj/{n}"].state for n in bodies] == ["finished", "failed", "finished"]
    assert result.state == "failed"
    ids = [JobHandle.from_json(tasks[f"sj/{n}"].handle or "").native_id for n in bodies]
    deps = [j["deps"] for j in pbs.jobs()]
    assert deps == [[], [["any", int(ids[0])]], [["notok", int(ids[1])]]]


def test_pbs_pro_without_history_runs_neither(project: Project, pbs: Pbs) -> None:
    pbs.host("PBSProWithoutHistory")
    c = sharin.add_component(
        project, "bulkjobTask", "bulk", script="run.sh", host="pbs", useJobScheduler=True
    )
    (c.directory / "run.sh").write_text("#!/bin/sh\ntrue\n")

    [problem] = [x for x in sharin.validate(project) if x.field == "host"]

    assert (problem.file, problem.field) == ("bulk/cmp.wheel.json", "host")
    assert "cannot run bulk jobs" in problem.message


def test_a_step_after_a_deleted_step_is_deleted_too_on_pbs_pro(project: Project, pbs: Pbs) -> None:
    # PBS Pro's afterany "will not run if a job in the arg list was deleted without ever having
    # been run": where PJM would run s2, PBS deletes it, and sharin says so
    pbs.host()
    sharin.add_component(project, "stepjob", "sj", host="pbs")
    for n, body in {"s0": "exit 1", "s1": "true", "s2": "true"}.items():
        c = sharin.add_component(project, "stepjobTask", n, parent="sj", script="run.sh")
        (c.directory / "run.sh").write_text(
            '#!/bin/sh\ncd "$PBS_O_WORKDIR"\n' + log_line(n) + body + "\n"
        )
    sharin.connect(project, "sj/s0", "sj/s1")
    sharin.connect(project, "sj/s1", "sj/s2")
    sharin.set_property(project, "sj/s0", "ignoreFailure", True)
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec!=0")

    sharin.run(project)

    assert lines(project.root / "ran.log") == ["s0"]
    tasks = journal_tasks(project.root, 1)
    assert tasks["sj/s2"].state == "finished"
    assert "did not run, so its dependency statement deleted it" in (tasks["sj/s2"].message or "")
    assert tasks["sj"].state == "finished"


def test_stop_deletes_the_whole_pbs_pro_array(project: Project, pbs: Pbs, procs: Processes) -> None:
    pbs.host()
    c = sharin.add_component(
        project,
        "bulkjobTask",
        "bulk",
        script="run.sh",
        host="pbs",
        useJobScheduler=True,
        usePSSettingFile=False,
        startBulkNumber=0,
        endBulkNumber=5,
    )
    (c.directory / "run.sh").write_text("#!/bin/sh\n" + log_line("$PJM_BULKNUM") + "sleep 30\n")
    engine = procs.start("run", project.root)
    wait_for(lambda: lines(project.root / "ran.log"), "a sub job to run", timeout=60)

    procs.run("stop", project.root)
    engine.wait(timeout=30)

    assert engine.returncode == 3
    [job] = pbs.jobs()
    wait_for(
        lambda: all(e["st"] == "ended" for e in pbs.jobs()[0]["elements"]),  # type: ignore[index,union-attr]
        "every subjob to end",
        timeout=20,
    )
    hows = {e["how"] for e in pbs.jobs()[0]["elements"]}  # type: ignore[index,union-attr]
    assert hows <= {"killed", "deleted"} and len(lines(project.root / "ran.log")) <= 4
