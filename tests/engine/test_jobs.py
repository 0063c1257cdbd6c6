"""Step jobs (stepjob + stepjobTask) and bulk jobs (bulkjobTask) through the PJM stand-in."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle

from ..conftest import Pjm, Processes
from ..helpers import journal_tasks, lines, log_line, wait_for


def stepjob(p: Project, name: str = "sj", **props: object) -> sharin.Component:
    props.setdefault("host", "fugaku")
    return sharin.add_component(p, "stepjob", name, **props)


def step(p: Project, name: str, body: str, parent: str = "sj", **props: object) -> None:
    c = sharin.add_component(p, "stepjobTask", name, parent=parent, script="run.sh", **props)
    path = c.directory / "run.sh"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def chain_steps(p: Project, bodies: dict[str, str], parent: str = "sj") -> None:
    names = list(bodies)
    for n in names:
        step(p, n, bodies[n], parent)
    for a, b in zip(names, names[1:], strict=False):
        sharin.connect(p, f"{parent}/{a}", f"{parent}/{b}")


def test_steps_are_one_step_job_run_in_order(project: Project, pjm: Pjm) -> None:
    stepjob(project, queue="small")
    chain_steps(project, {n: log_line(n) + "sleep 0.2" for n in ("s0", "s1", "s2")})
    assert [
        sharin.open_project(project.root).component(f"sj/{n}").data["stepnum"]
        for n in ("s0", "s1", "s2")
    ] == [0, 1, 2]

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert lines(project.root / "ran.log") == ["s0", "s1", "s2"]
    subs = pjm.call_lines("pjsub")
    assert [a[a.index("--sparam") + 1] for a in subs][0] == "jnam=sj,sn=0"
    tasks = journal_tasks(project.root, 1)
    ids = [JobHandle.from_json(tasks[f"sj/{n}"].handle or "").native_id for n in ("s0", "s1", "s2")]
    base = ids[0].split("_")[0]
    assert ids == [f"{base}_0", f"{base}_1", f"{base}_2"]
    assert [a[a.index("--sparam") + 1] for a in subs][1:] == [
        f"jid={base},sn=1",
        f"jid={base},sn=2",
    ]
    assert all(["-L", "rscgrp=small"] == a[1:3] for a in subs)
    assert tasks["sj"].state == "finished"


def test_a_step_deleted_by_its_dependency_counts_as_finished(project: Project, pjm: Pjm) -> None:
    stepjob(project)
    chain_steps(project, {"s0": log_line("s0") + "exit 1", "s1": log_line("s1")})
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec!=0:one:0")
    sharin.set_property(project, "sj/s0", "ignoreFailure", True)

    result = sharin.run(project)

    assert lines(project.root / "ran.log") == ["s0"]  # s1 never ran
    tasks = journal_tasks(project.root, 1)
    assert tasks["sj/s0"].state == "failed"
    assert tasks["sj/s1"].state == "finished"
    assert "deleted by its step dependency" in (tasks["sj/s1"].message or "")
    assert tasks["sj"].state == "finished"  # s0 failed, but with ignoreFailure
    assert result.state == "failed"  # the run still reports it


def test_stepjob_validation(project: Project, pjm: Pjm) -> None:
    stepjob(project)
    step(project, "s0", "true")
    sharin.add_task(project, "plain", "true", parent="sj")
    step(project, "s1", "true", useDependency=True, dependencyForm="ec is not zero")
    sharin.connect_files(project, "sj/s0", "a.txt", "sj/s1", "a.txt")
    sharin.set_property(project, "sj/s0", "retry", 2)
    pjm.host(useStepjob=False)

    found = {(p.file, p.field): p.message for p in sharin.validate(project)}

    assert "only stepjobTask" in found["sj/plain/cmp.wheel.json", "type"]
    assert "useStepjob" in found["sj/cmp.wheel.json", "host"]
    assert "sd=ec!=0" in found["sj/s1/cmp.wheel.json", "dependencyForm"]
    assert "between the steps" in found["sj/s1/cmp.wheel.json", "inputFiles[a.txt]"]
    assert "set retry to 0" in found["sj/s0/cmp.wheel.json", "retry"]


def test_killed_engine_resumes_a_stepjob_without_resubmitting(
    project: Project, pjm: Pjm, procs: Processes
) -> None:
    stepjob(project)
    chain_steps(
        project,
        {
            "s0": log_line("s0") + "sleep 0.3",
            "s1": log_line("s1") + "sleep 1.5",
            "s2": log_line("s2"),
        },
    )
    engine = procs.start("run", project.root)
    wait_for(lambda: "s1" in lines(project.root / "ran.log"), "s1 to run", timeout=30)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()

    second = procs.run("run", project.root, timeout=90)

    assert "resumed run 1 finished" in second.stdout
    assert len(pjm.call_lines("pjsub")) == 3
    assert lines(project.root / "ran.log") == ["s0", "s1", "s2"]
    tasks = journal_tasks(project.root, 1)
    assert {k: (t.state, t.attempt) for k, t in tasks.items() if k.startswith("sj/")} == {
        f"sj/s{i}": ("finished", 1) for i in range(3)
    }


# ---------------------------------------------------------------------- bulk jobs
def bulk_task(p: Project, body: str, setting: dict[str, object] | None = None, **props: object):
    props.setdefault("host", "fugaku")
    c = sharin.add_component(p, "bulkjobTask", "bulk", script="run.sh", **props)
    (c.directory / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    (c.directory / "run.sh").chmod(0o755)
    if setting is not None:
        (c.directory / "parameterSetting.json").write_text(json.dumps(setting))
        sharin.set_property(p, c, "parameterFile", "parameterSetting.json")
    return c


SETTING = {
    "version": 2,
    "targetFiles": [{"targetName": "input.txt"}],
    "params": [{"keyword": "x", "type": "string", "list": ["a<b", "c&d", "e"]}],
    "scatter": [],
    "gather": [],
}


def test_a_bulk_job_runs_one_sub_job_per_parameter_vector(project: Project, pjm: Pjm) -> None:
    c = bulk_task(
        project,
        'cat "$PJM_BULKNUM.input.txt" > "out.$PJM_BULKNUM.txt"; [ "$PJM_BULKNUM" != 1 ]',
        SETTING,
    )
    (c.directory / "input.txt").write_text("x={{ x }}\n")

    result = sharin.run(project)

    assert result.state == "finished", result.failed  # one sub job failed; any success will do
    d = c.directory
    assert [(d / f"out.{n}.txt").read_text() for n in (0, 2)] == ["x=a<b\n", "x=e\n"]
    assert (d / "1.input.txt").read_text() == "x=c&d\n"  # rendered without HTML escaping
    assert (d / "subjob_status.wheel.txt").read_text().splitlines() == [
        "RT_0=0",
        "JOBSTATUS_0=0",
        "RT_1=1",
        "JOBSTATUS_1=0",
        "RT_2=0",
        "JOBSTATUS_2=0",
    ]
    params = (d / "parameterSet.wheel.txt").read_text().splitlines()
    assert 'BULKNUM_2_TARGETNUM_0_VALUE="e"' in params and len(params) == 9
    [submit] = pjm.call_lines("pjsub")
    assert submit[submit.index("--bulk") + 1 :][:2] == ["--sparam", "0-2"]


def test_a_bulk_job_whose_sub_jobs_all_fail_fails(project: Project, pjm: Pjm) -> None:
    c = bulk_task(project, "exit 2", useJobScheduler=True, usePSSettingFile=False)
    sharin.set_property(project, c, "startBulkNumber", 3)
    sharin.set_property(project, c, "endBulkNumber", 4)

    result = sharin.run(project)

    assert result.state == "failed"
    text = (c.directory / "subjob_status.wheel.txt").read_text()
    assert "RT_3=2" in text and "RT_4=2" in text and "RT_0" not in text


@pytest.mark.parametrize(
    ("condition", "state"),
    [("all_ok.sh", "failed"), ("true", "finished"), ("false", "failed")],
)
def test_a_manual_finish_condition_decides(
    project: Project, pjm: Pjm, condition: str, state: str
) -> None:
    c = bulk_task(project, '[ "$PJM_BULKNUM" = 0 ]', usePSSettingFile=False)
    for k, v in (("startBulkNumber", 0), ("endBulkNumber", 1), ("manualFinishCondition", True)):
        sharin.set_property(project, c, k, v)
    sharin.set_property(project, c, "condition", condition)
    script = c.directory / "all_ok.sh"
    script.write_text("#!/bin/sh\n! grep -q '^RT_.*=[^0]' subjob_status.wheel.txt\n")
    script.chmod(0o755)

    result = sharin.run(project)

    assert result.state == state, result.failed


def test_bulkjob_validation(project: Project, pjm: Pjm) -> None:
    c = bulk_task(project, "true", usePSSettingFile=False)
    sharin.set_property(project, c, "startBulkNumber", 5)
    sharin.set_property(project, c, "endBulkNumber", 2)
    sharin.set_property(project, c, "manualFinishCondition", True)
    pjm.host(useBulkjob=False)

    found = {(p.file, p.field): p.message for p in sharin.validate(project)}

    assert "useBulkjob" in found["bulk/cmp.wheel.json", "host"]
    assert "0 ≤ start ≤ end" in found["bulk/cmp.wheel.json", "startBulkNumber/endBulkNumber"]
    assert "condition" in {f for _, f in found}


def test_killed_engine_reattaches_to_a_bulk_job(
    project: Project, pjm: Pjm, procs: Processes
) -> None:
    c = bulk_task(
        project,
        'echo "$PJM_BULKNUM" >> "$SHARIN_PROJECT_DIR/ran.log"; sleep 1.5',
        usePSSettingFile=False,
    )
    sharin.set_property(project, c, "startBulkNumber", 0)
    sharin.set_property(project, c, "endBulkNumber", 2)
    engine = procs.start("run", project.root)
    wait_for(lambda: len(lines(project.root / "ran.log")) >= 1, "a sub job to run", timeout=30)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()

    second = procs.run("run", project.root, timeout=90)

    assert "resumed run 1 finished" in second.stdout
    assert sorted(lines(project.root / "ran.log")) == ["0", "1", "2"]
    assert len(pjm.call_lines("pjsub")) == 1
    assert "RT_2=0" in (c.directory / "subjob_status.wheel.txt").read_text()


def test_wheel_format_step_and_bulk_projects_import_and_run(tmp_path: Path, pjm: Pjm) -> None:
    from ..model.test_archive import ROOT_ID, _cmp, _tar, _write_project

    sj, s0, s1, bj = (f"{i:08x}-aaaa-11ef-9709-030ae2f94392" for i in range(1, 5))
    task = dict(script="run.sh", host="fugaku", useJobScheduler=True, queue="small")
    comps = {
        "sj": _cmp(
            "stepjob",
            "sj",
            sj,
            ROOT_ID,
            host="fugaku",
            useJobScheduler=True,
            queue=None,
            submitOption=None,
            next=[bj],
        ),
        "sj/s0": _cmp(
            "stepjobTask",
            "s0",
            s0,
            sj,
            next=[s1],
            stepnum=0,
            useDependency=False,
            dependencyForm=None,
            **task,
        ),
        "sj/s1": _cmp(
            "stepjobTask",
            "s1",
            s1,
            sj,
            previous=[s0],
            stepnum=1,
            useDependency=True,
            dependencyForm="sd=ec!=0:all:0",
            **task,
        ),
        "bj": _cmp(
            "bulkjobTask",
            "bj",
            bj,
            ROOT_ID,
            previous=[sj],
            usePSSettingFile=False,
            parameterFile=None,
            startBulkNumber=0,
            endBulkNumber=1,
            manualFinishCondition=False,
            condition=None,
            **task,
        ),
    }
    src = tmp_path / "hand" / "steps.wheel"
    _write_project(
        src,
        comps,
        {
            f"{d}/run.sh": f'#!/bin/sh\necho {d}$PJM_BULKNUM >> "$WHEEL_LOCAL_PRJDIR/ran.log"\n'
            for d in ("sj/s0", "sj/s1", "bj")
        },
    )
    archive = _tar(src, tmp_path / "steps.tgz")

    p = sharin.import_project(archive, tmp_path / "imported")
    result = sharin.run(p)

    assert result.state == "finished", result.failed
    got = lines(p.root / "ran.log")
    assert got[:2] == ["sj/s0", "sj/s1"] and sorted(got[2:]) == ["bj0", "bj1"]


def test_files_flow_into_a_stepjob_and_out_of_it(project: Project, pjm: Pjm) -> None:
    sharin.add_task(project, "make", "echo seed > seed.txt", outputs=["seed.txt"])
    stepjob(project)
    chain_steps(project, {"s0": "cat in.txt > s0.txt", "s1": "cat ../s0/s0.txt > result.txt"})
    sharin.add_task(project, "use", "cat got.txt > final.txt")
    sharin.connect_files(project, "make", "seed.txt", "sj", "seed.txt")
    sharin.connect_files(project, "sj", "seed.txt", "sj/s0", "in.txt")
    sharin.set_property(project, "sj/s1", "outputFiles", [{"name": "result.txt", "dst": []}])
    sharin.connect_files(project, "sj/s1", "result.txt", "sj", "result.txt")
    sharin.connect_files(project, "sj", "result.txt", "use", "got.txt")

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert (project.root / "use" / "final.txt").read_text() == "seed\n"


def test_files_flow_into_a_bulk_job_and_out_of_it(project: Project, pjm: Pjm) -> None:
    sharin.add_task(project, "make", "echo 7 > n.txt", outputs=["n.txt"])
    c = bulk_task(
        project,
        'read n < n.txt; echo "$n-$PJM_BULKNUM" > "r$PJM_BULKNUM.txt"',
        usePSSettingFile=False,
    )
    sharin.set_property(project, c, "startBulkNumber", 0)
    sharin.set_property(project, c, "endBulkNumber", 1)
    sharin.set_property(project, c, "outputFiles", [{"name": "r*.txt", "dst": []}])
    sharin.add_task(project, "sum", "cat rs/r0.txt rs/r1.txt > all.txt")
    sharin.connect_files(project, "make", "n.txt", "bulk", "n.txt")
    sharin.connect_files(project, "bulk", "r*.txt", "sum", "rs/")

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert (project.root / "sum" / "all.txt").read_text() == "7-0\n7-1\n"


def test_a_bulk_job_inside_a_for_loop(project: Project, pjm: Pjm) -> None:
    sharin.add_component(project, "for", "loop", start=1, end=2, step=1)
    c = sharin.add_component(
        project,
        "bulkjobTask",
        "bulk",
        parent="loop",
        host="fugaku",
        script="run.sh",
        usePSSettingFile=False,
        startBulkNumber=0,
        endBulkNumber=1,
    )
    (c.directory / "run.sh").write_text(
        '#!/bin/sh\necho "$WHEEL_CURRENT_INDEX.$PJM_BULKNUM" >> "$SHARIN_PROJECT_DIR/ran.log"\n'
    )
    (c.directory / "run.sh").chmod(0o755)

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert sorted(lines(project.root / "ran.log")) == ["1.0", "1.1", "2.0", "2.1"]


def test_stop_deletes_the_steps_and_stops_the_stepjob(
    project: Project, pjm: Pjm, procs: Processes
) -> None:
    stepjob(project)
    chain_steps(project, {"s0": log_line("s0") + "sleep 30", "s1": log_line("s1")})
    engine = procs.start("run", project.root)
    wait_for(lambda: "s0" in lines(project.root / "ran.log"), "s0 to run", timeout=30)

    procs.run("stop", project.root)
    engine.wait(timeout=30)

    assert engine.returncode == 3
    tasks = journal_tasks(project.root, 1)
    assert (tasks["sj"].state, tasks["sj/s0"].state, tasks["sj/s1"].state) == (
        "stopped",
        "stopped",
        "stopped",
    )
    assert len(pjm.call_lines("pjdel")) == 2, journal_tasks(project.root, 1)
    assert lines(project.root / "ran.log") == ["s0"]


def test_a_bulk_submission_cut_short_by_a_crash_is_found_again(project: Project, pjm: Pjm) -> None:
    from sharin.engine import BulkRequest

    c = bulk_task(
        project,
        'echo "$PJM_BULKNUM" >> "$SHARIN_PROJECT_DIR/ran.log"',
        usePSSettingFile=False,
        startBulkNumber=0,
        endBulkNumber=1,
    )
    pjm.submit_then_crash(project, c, "bulkjobTask", bulk=BulkRequest(0, 1))

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert len(pjm.call_lines("pjsub")) == 1
    assert sorted(lines(project.root / "ran.log")) == ["0", "1"]
    assert "RT_1=0" in (c.directory / "subjob_status.wheel.txt").read_text()


def test_a_failing_step_fails_the_stepjob(project: Project, pjm: Pjm) -> None:
    stepjob(project)
    chain_steps(project, {"s0": "exit 4", "s1": log_line("s1")})

    result = sharin.run(project)

    assert result.state == "failed"
    tasks = journal_tasks(project.root, 1)
    assert (tasks["sj/s0"].state, tasks["sj/s0"].rc) == ("failed", 4)
    assert tasks["sj/s1"].state == "finished"  # PJM ran it: it had no dependency statement
    assert tasks["sj"].state == "failed"
