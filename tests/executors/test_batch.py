"""Batch jobs through the PJM stand-in: submit, batched status, logs, refusals, cancel, recovery."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle, TaskSpec
from sharin.errors import ProjectError
from sharin.executors import BatchExecutor, ExecutorRegistry, LocalTransport, load_schedulers
from sharin.model import load_hosts

from ..conftest import Cli, Pjm, Processes
from ..helpers import journal_tasks, lines, log_line, wait_for


def job_task(p: Project, name: str, body: str, **props: object) -> sharin.Component:
    props.setdefault("host", "fugaku")
    props.setdefault("useJobScheduler", True)
    return sharin.add_task(p, name, body, **props)


def test_a_task_runs_as_a_batch_job(project: Project, pjm: Pjm) -> None:
    job_task(project, "t", "echo job $PJM_JOBID in $(pwd); echo GREETING=$GREETING", queue="small")
    sharin.set_property(project, "t", "env", {"GREETING": "hello"})

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    [submit] = pjm.call_lines("pjsub")
    assert submit[:3] == ["-X", "-L", "rscgrp=small"] and submit[-1] == "./run.sh"
    out = (project.root / ".sharin" / "runs" / "1" / "t.out").read_text()
    assert "pjsub Job" in out  # the submission, then the job's own output
    assert f"in {project.root / 't'}" in out and "GREETING=hello" in out
    record = journal_tasks(project.root, 1)["t"]
    assert record.handle is not None
    assert JobHandle.from_json(record.handle).executor == "batch"
    status = (project.root / "t" / "status.wheel.txt").read_text().split("\n")
    assert status[:2] == ["finished", "0"]


def test_a_failing_job_fails_the_task_with_its_exit_code(project: Project, pjm: Pjm) -> None:
    job_task(project, "t", "echo about to fail >&2; exit 3")

    result = sharin.run(project)

    assert result.state == "failed"
    record = journal_tasks(project.root, 1)["t"]
    assert (record.state, record.rc) == ("failed", 3)
    err = (project.root / ".sharin" / "runs" / "1" / "t.err").read_text()
    assert "about to fail" in err


def test_one_status_query_covers_every_job_on_the_host(project: Project, pjm: Pjm) -> None:
    names = [f"t{i}" for i in range(6)]
    for n in names:
        job_task(project, n, "sleep 1")

    started = time.monotonic()
    result = sharin.run(project)
    elapsed = time.monotonic() - started

    assert result.state == "finished", result.failed
    stats = [a for a in pjm.call_lines("pjstat") if "-H" not in a]
    # one query per interval for all jobs: far fewer calls than one per job per interval
    per_job = 6 * elapsed / 0.1
    assert len(stats) < per_job / 3, (len(stats), per_job)
    assert max(len([x for x in a if x.isdigit()]) for a in stats) == 6


def test_a_refused_submission_says_what_the_scheduler_said(project: Project, pjm: Pjm) -> None:
    job_task(project, "t", "true", submitOption="--no-such-option")

    result = sharin.run(project)

    assert result.state == "failed"
    assert "did not accept t" in result.failed[0]
    assert "no-such-option" in result.failed[0]


def test_a_full_scheduler_is_waited_for(
    project: Project, pjm: Pjm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PJM_STANDIN_ACCEPT_LIMIT", "1")
    job_task(project, "a", "sleep 0.5")
    job_task(project, "b", "sleep 0.5")

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    logs = project.root / ".sharin" / "runs" / "1"
    retried = [n for n in "ab" if "scheduler is full" in (logs / f"{n}.out").read_text()]
    assert len(retried) == 1


def test_stop_cancels_the_job(project: Project, pjm: Pjm, procs: Processes) -> None:
    job_task(project, "t", log_line("t") + "sleep 30")
    engine = procs.start("run", project.root)
    wait_for(lambda: "t" in lines(project.root / "ran.log"), "the job to run", timeout=30)

    procs.run("stop", project.root)
    engine.wait(timeout=30)

    assert engine.returncode == 3
    assert pjm.call_lines("pjdel")
    record = journal_tasks(project.root, 1)["t"]
    assert record.state == "stopped"
    handle = JobHandle.from_json(record.handle or "{}")
    history = pjm.command("pjstat", "-v", "-H", "--choose", "jid,st,ec,pc", handle.native_id)
    [row] = [r.split() for r in history.splitlines() if r.split()[:1] == [handle.native_id]]
    assert row[1] == "CCL"


def test_killed_engine_reattaches_to_the_job_without_resubmitting(
    project: Project, pjm: Pjm, procs: Processes
) -> None:
    job_task(project, "t1", log_line("t1") + "sleep 2")
    job_task(project, "t2", log_line("t2"))
    sharin.connect(project, "t1", "t2")
    engine = procs.start("run", project.root)

    def submitted() -> bool:
        if not (project.root / ".sharin" / "journal.sqlite").exists():
            return False
        r = journal_tasks(project.root, 1).get("t1")
        return r is not None and r.handle is not None

    wait_for(submitted, "t1 to be submitted", timeout=30)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    record = journal_tasks(project.root, 1)["t1"]
    job_id = JobHandle.from_json(record.handle or "").native_id
    assert record.message == f"Fugaku job {job_id} on fugaku"  # what `sharin status` shows

    second = procs.run("run", project.root, timeout=90)

    assert "resumed run 1 finished" in second.stdout
    assert len(pjm.call_lines("pjsub")) == 2  # t1 once, t2 once
    assert lines(project.root / "ran.log") == ["t1", "t2"]
    tasks = journal_tasks(project.root, 1)
    assert {k: (t.state, t.attempt) for k, t in tasks.items()} == {
        "t1": ("finished", 1),
        "t2": ("finished", 1),
    }


def test_a_submission_cut_short_by_a_crash_is_found_again(project: Project, pjm: Pjm) -> None:
    """The engine died after pjsub accepted the job but before the journal had its id."""
    c = job_task(project, "t", log_line("t") + "sleep 0.5")
    run = pjm.submit_then_crash(project, c, "task", host="fugaku", use_job_scheduler=True)

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert len(pjm.call_lines("pjsub")) == 1
    assert lines(project.root / "ran.log") == ["t"]
    assert journal_tasks(project.root, run)["t"].attempt == 1


def test_status_answers_for_many_jobs_in_one_query(project: Project, pjm: Pjm) -> None:
    c = job_task(project, "t", "exit 4")
    host = load_hosts()["fugaku"]
    ex = BatchExecutor(host, load_schedulers()["Fugaku"], LocalTransport())

    async def go() -> dict[JobHandle, sharin.engine.JobStatus]:
        handles = []
        for i in range(3):
            spec = TaskSpec(
                key=f"t{i}",
                name="t",
                workdir=c.directory,
                script="run.sh",
                env={},
                log_dir=project.root / "logs",
                attempt=1,
            )
            handles.append(await ex.submit(spec))
        await asyncio.sleep(1.5)
        before = ex.queries
        answer = await ex.status(handles)
        assert ex.queries - before == 2  # stat, then statAfter for the ended ones
        return answer

    answer = asyncio.run(go())
    assert {s.state for s in answer.values()} == {"failed"}
    assert {s.returncode for s in answer.values()} == {4}


def test_a_job_the_scheduler_forgot_is_lost_on_attach(project: Project, pjm: Pjm) -> None:
    c = job_task(project, "t", "true")
    host = load_hosts()["fugaku"]
    ex = BatchExecutor(host, load_schedulers()["Fugaku"], LocalTransport())
    spec = TaskSpec(
        key="t", name="t", workdir=c.directory, script="run.sh", env={}, log_dir=project.root
    )
    result = asyncio.run(ex.attach(JobHandle("batch", "fugaku", "999999", {}), spec))
    assert result.lost and "no record of job 999999" in result.message


def test_user_scheduler_entries_are_merged_field_by_field(config_dir: Path) -> None:
    # OPEN-WHEEL 2025: a user entry changes only the fields it gives
    builtin = load_schedulers()["Fugaku"]
    (config_dir / "jobScheduler.json").write_text(json.dumps({"Fugaku": {"submit": "mysub"}}))
    fugaku = load_schedulers()["Fugaku"]
    assert fugaku.submit == "mysub"
    assert fugaku.stat == builtin.stat and fugaku.re_job_id == builtin.re_job_id
    assert fugaku.supports_step and fugaku.supports_bulk
    assert fugaku.raw["reReturnCode"] == builtin.raw["reReturnCode"]


def test_a_user_scheduler_sharin_does_not_ship_must_be_complete(config_dir: Path) -> None:
    (config_dir / "jobScheduler.json").write_text(
        json.dumps({"Mine": {"submit": "qsub", "stat": "qstat"}})
    )
    with pytest.raises(ProjectError) as e:
        load_schedulers()
    msg = str(e.value)
    assert msg.startswith(f"{config_dir / 'jobScheduler.json'} [Mine]: ")
    assert "missing: del, reJobID, reReturnCode, reRunning" in msg


def test_user_scheduler_fields_are_type_checked(config_dir: Path) -> None:
    (config_dir / "jobScheduler.json").write_text(
        json.dumps({"Fugaku": {"submit": 3, "acceptableRt": [True]}, "X": []})
    )
    with pytest.raises(ProjectError) as e:
        load_schedulers()
    msg = str(e.value)
    assert msg.startswith(f"3 problems in {config_dir / 'jobScheduler.json'}:")
    assert "[Fugaku.submit]: must be a string or a list of strings (or null), not 3" in msg
    assert "[Fugaku.acceptableRt[0]]: must be a whole number or a string, not true" in msg
    assert "[X]: must be an object of fields (submit, stat, reJobID …), not a list" in msg

    (config_dir / "jobScheduler.json").write_text(
        json.dumps(
            {
                "Mine": {
                    "submit": "qsub",
                    "del": "qdel",
                    "stat": "qstat",
                    "reJobID": "(\\d+",
                    "reRunning": "x",
                    "reReturnCode": "(\\d+)",
                }
            }
        )
    )
    with pytest.raises(ProjectError) as e:
        load_schedulers()
    assert "[Mine.reJobID]: is not a valid regular expression" in str(e.value)


def test_wheel_2022_definitions_are_understood(config_dir: Path) -> None:
    # W22's TCS entry: no reRunning, a reFinishedState instead; stat as a list
    (config_dir / "jobScheduler.json").write_text(
        json.dumps(
            {
                "Old": {
                    "submit": "pjsub -X",
                    "queueOpt": "-L rscgrp=",
                    "stat": [
                        "pjstat -v --choose jid,st,ec,pc",
                        "pjstat -v -H --choose jid,st,ec,pc",
                    ],
                    "del": "pjdel",
                    "reJobID": "pjsub Job (\\d+_*\\d*) submitted.",
                    "reFinishedState": "^JOB_ID *ST *EC *PC *\\n(?:\\d+|\\d+_\\d+) *(?:CCL|ERR|EXT|RJT)",
                    "reReturnCode": "^JOB_ID *ST *EC *PC *\\n(?:\\d+|\\d+_\\d+) *(?:EXT|CCL) *(\\d+)",
                    "stepjob": True,
                }
            }
        )
    )
    old = load_schedulers()["Old"]
    assert old.supports_step and not old.supports_bulk
    assert old.stat == "pjstat -v --choose jid,st,ec,pc ; pjstat -v -H --choose jid,st,ec,pc"
    running = "JOB_ID ST EC PC\n12 RUN - -\n"
    ended = "JOB_ID ST EC PC\n12 EXT 2 0\n"
    assert old.is_running(running, "12") and not old.is_running(ended, "12")
    outcome = old.outcome(ended, "12")
    assert outcome is not None and outcome.returncode == 2


def test_a_job_id_is_not_taken_for_the_tail_of_another() -> None:
    fugaku = load_schedulers()["Fugaku"]
    out = "JOB_ID ST\n112 RUN\n"
    assert fugaku.is_running(out, "112") and not fugaku.is_running(out, "12")


def test_unknown_scheduler_and_ssh_hosts_are_clear_errors(config_dir: Path) -> None:
    (config_dir / "remotehost.json").write_text(
        json.dumps(
            [
                {"name": "a", "host": "x", "transport": "local", "jobScheduler": "Nope"},
                {"name": "b", "host": "x", "transport": "local"},
                {"name": "c", "host": "x", "transport": "carrier-pigeon", "jobScheduler": "Fugaku"},
            ]
        )
    )
    reg = ExecutorRegistry(load_hosts())
    for host, words in (
        ("a", "unknown jobScheduler 'Nope'"),
        ("b", "has no jobScheduler"),
        ("c", "unknown transport 'carrier-pigeon'"),
    ):
        with pytest.raises(sharin.errors.ExecutorError) as e:
            reg.executor_for(host, True)
        assert words in str(e.value)
    assert reg.executor_for("b", False).kind == "local"


def test_staged_jobs_run_in_a_directory_per_run_and_bring_outputs_back(
    project: Project, pjm: Pjm, tmp_path: Path
) -> None:
    work = tmp_path / "scratch"
    pjm.host(path=str(work))
    c = job_task(
        project,
        "t",
        "pwd > where.txt; echo data > out.txt; echo junk > junk.txt; "
        "mkdir -p sub/deep; echo s > sub/out.txt; echo d > sub/deep/x.log",
    )
    sharin.set_property(project, c, "include", ["sub/*.txt"])
    sharin.set_property(project, c, "outputFiles", [{"name": "out.txt", "dst": []}])

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    [run_dir] = list(work.iterdir())
    assert (run_dir / "t" / "where.txt").read_text().strip() == str(run_dir / "t")
    assert (project.root / "t" / "out.txt").read_text() == "data\n"
    assert not (project.root / "t" / "junk.txt").exists()  # neither an output nor included
    assert (project.root / "t" / "sub" / "out.txt").read_text() == "s\n"  # include: sub/*.txt
    assert not (project.root / "t" / "sub" / "deep").exists()  # * does not cross /
    assert not (run_dir / "t" / "cmp.wheel.json").exists()  # WHEEL's own files stay home


def test_stop_during_submission_deletes_the_job_it_submitted(
    project: Project, pjm: Pjm, procs: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    real = shutil.which("pjsub")
    assert real is not None
    (slow / "pjsub").write_text(
        f'#!/bin/sh\ntouch "{tmp_path}/submitting"\nsleep 1.5\nexec "{real}" "$@"\n'
    )
    (slow / "pjsub").chmod(0o755)
    monkeypatch.setenv("PATH", f"{slow}:{os.environ['PATH']}")
    job_task(project, "t", log_line("t") + "sleep 30")
    engine = procs.start("run", project.root)
    wait_for((tmp_path / "submitting").exists, "pjsub to be called", timeout=30)

    procs.run("stop", project.root)
    engine.wait(timeout=30)

    assert engine.returncode == 3
    [submitted] = pjm.call_lines("pjsub")
    [deleted] = pjm.call_lines("pjdel")
    history = pjm.command("pjstat", "-v", "-H", "--choose", "jid,st")
    assert [r.split() for r in history.splitlines()][1:] == [[deleted[-1], "CCL"]]
    assert not (project.root / "ran.log").exists()  # deleted before it could start


def test_a_job_whose_status_cannot_be_read_is_unknown_then_re_attached(
    project: Project, pjm: Pjm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "pjstat").write_text(
        "#!/bin/sh\necho '[ERR.] PJM 9999 pjstat server down' >&2\nexit 1\n"
    )
    (broken / "pjstat").chmod(0o755)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{broken}:{path}")
    pjm.host(maxStatusCheckError=2)
    job_task(project, "t", log_line("t") + "sleep 2")

    first = sharin.run(project)

    assert first.state == "failed"
    [message] = first.failed
    assert "failed 3 times in a row" in message and "server down" in message
    assert "`sharin run` again to re-attach" in message
    record = journal_tasks(project.root, 1)["t"]
    assert record.state == "unknown" and record.handle is not None

    monkeypatch.setenv("PATH", path)  # the scheduler answers again
    second = sharin.run(project)

    assert second.state == "finished", second.failed
    assert len(pjm.call_lines("pjsub")) == 1  # re-attached, not submitted again
    assert lines(project.root / "ran.log") == ["t"]
    assert journal_tasks(project.root, 1)["t"].state == "finished"


def test_validate_names_components_whose_host_cannot_serve_them(
    project: Project, config_dir: Path
) -> None:
    (config_dir / "remotehost.json").write_text(
        json.dumps(
            [
                {"name": "a", "host": "x", "transport": "local", "jobScheduler": "Nope"},
                {"name": "b", "host": "x", "transport": "local"},
            ]
        )
    )
    job_task(project, "t1", "true", host="a")
    job_task(project, "t2", "true", host="b")
    sharin.add_task(project, "t3", "true", host="b")  # no scheduler needed: runs here

    found = {(p.file, p.field): p.message for p in sharin.validate(project)}

    assert set(found) == {("t1/cmp.wheel.json", "host"), ("t2/cmp.wheel.json", "host")}
    assert "unknown jobScheduler 'Nope'" in found["t1/cmp.wheel.json", "host"]
    assert "has no jobScheduler" in found["t2/cmp.wheel.json", "host"]


def test_status_jobs_asks_each_host_once(
    project: Project, pjm: Pjm, procs: Processes, cli: Cli
) -> None:
    pjm.host(statusCheckInterval=60)  # the engine's own checks stay out of the count
    for n in ("a", "b", "c"):
        job_task(project, n, log_line(n) + "sleep 30")
    sharin.add_task(project, "here", log_line("here") + "sleep 30")
    engine = procs.start("run", project.root)
    wait_for(lambda: len(lines(project.root / "ran.log")) == 4, "every task to run", timeout=60)
    before = len(pjm.call_lines("pjstat"))

    states = sharin.job_states(project.root)

    assert {k: s.state for k, s in states.items()} == {
        "a": "running",
        "b": "running",
        "c": "running",
        "here": "running",
    }
    asked = pjm.call_lines("pjstat")[before:]
    assert len(asked) == 1 and len([x for x in asked[0] if x.isdigit()]) == 3
    out = cli("status", project.root, "--jobs").stdout
    assert "host says" in out and out.count("running: queued or running") == 3
    procs.run("stop", project.root)
    engine.wait(timeout=30)


def test_a_scheduler_that_is_not_installed_is_named(project: Project, config_dir: Path) -> None:
    (config_dir / "remotehost.json").write_text(
        json.dumps(
            [{"name": "fugaku", "host": "x", "transport": "local", "jobScheduler": "Fugaku"}]
        )
    )
    job_task(project, "t", "true")

    result = sharin.run(project)  # no stand-in on PATH: there is no pjsub here

    assert result.state == "failed"
    assert "pjsub was not found on this machine" in result.failed[0]
    assert "sharin-submit" not in result.failed[0]


def test_an_empty_command_list_is_a_missing_command(config_dir: Path) -> None:
    (config_dir / "jobScheduler.json").write_text(json.dumps({"Fugaku": {"submit": []}}))
    with pytest.raises(ProjectError, match=r"\[Fugaku.submit\]: is required"):
        load_schedulers()
