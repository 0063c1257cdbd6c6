"""Each shipped scheduler's status output read once into a table, on recorded outputs; the batch
executor's polling through small replay stand-ins (shell scripts that print a recorded output);
WHEEL's own jobScheduler.json files accepted unchanged."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from sharin.engine import JobHandle, JobResult, JobStatus, TaskSpec
from sharin.executors import BatchExecutor, LocalTransport, load_schedulers
from sharin.executors._scheduler import JobState, StatusOutputError
from sharin.model import load_hosts

DATA = Path(__file__).parent.parent / "data" / "schedulers"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def states(table: dict[str, JobState]) -> dict[str, tuple[str, int | None, str | None]]:
    return {k: (v.state, v.returncode, v.status) for k, v in table.items()}


# ------------------------------------------------------------------------------------ Slurm
def test_slurm_squeue_tells_queued_from_running_and_folds_array_tasks() -> None:
    slurm = load_schedulers()["SLURM"]
    ids = ["101", "102", "103", "104", "105", "106", "114", "999"]
    table = states(slurm.parse_status(recorded("slurm-squeue.txt"), ids))
    assert table == {
        "101": ("running", None, "RUNNING"),
        "102": ("queued", None, "PENDING"),
        "103": ("done", None, "COMPLETED"),  # squeue has no exit code: history is asked
        "104": ("done", None, "FAILED"),
        "105": ("running", None, "RUNNING"),  # one task runs, one ended, three pending
        "106": ("running", None, "COMPLETING"),
        "114": ("queued", None, "REQUEUED"),
    }


def test_slurm_sacct_exit_codes_steps_and_failure_states() -> None:
    slurm = load_schedulers()["SLURM"]
    ids = [str(i) for i in range(103, 117)]
    table = states(slurm.parse_status(recorded("slurm-sacct.txt"), ids, after=True))
    assert table["103"] == ("done", 0, "COMPLETED")  # steps .batch/.extern are not jobs
    assert table["104"] == ("done", 3, "FAILED")
    assert table["107"] == ("done", 143, "CANCELLED")  # "CANCELLED by 1000", 0:15
    assert table["108"] == ("done", 0, "TIMEOUT")
    assert table["110"] == ("done", 253, "OUT_OF_MEMORY")
    assert table["112"] == ("done", 2, "FAILED")  # the failed task of the array
    assert table["113"] == ("done", 0, "COMPLETED")
    assert table["115"] == ("done", 137, "COMPLETED")  # rc 0 with signal 9
    assert table["116"] == ("queued", None, "PENDING")
    assert "105" not in table and "114" not in table
    for failed in ("104", "107", "108", "109", "110", "111", "112"):
        assert not slurm.status_ok(table[failed][2]), failed
    assert slurm.status_ok(table["103"][2])


def test_slurm_garbage_is_a_clear_error() -> None:
    slurm = load_schedulers()["SLURM"]
    with pytest.raises(StatusOutputError, match=r"Slurm: cannot read the status line 'oops'"):
        slurm.parse_status("101|RUNNING\noops\n", ["101"])
    with pytest.raises(StatusOutputError, match="EXIT:SIGNAL"):
        slurm.parse_status("101|FAILED|x:0\n", ["101"], after=True)


# ------------------------------------------------------------------------------------ PBS Pro
def test_pbspro_qstat_xf_blocks() -> None:
    pbs = load_schedulers()["PBSPro"]
    ids = [str(i) for i in range(201, 210)]
    table = states(pbs.parse_status(recorded("pbspro-qstat-xf.txt"), ids))
    assert table == {
        "201": ("done", 0, "92"),
        "202": ("running", None, "R"),
        "203": ("queued", None, "Q"),
        "204": ("done", 3, "93"),
        "205": ("done", 143, "91"),  # 256 + SIGTERM: killed
        "206": ("done", None, "91"),  # deleted before it ran
        "207": ("queued", None, "H"),
        "208": ("running", None, "E"),
        "209": ("done", -1, "92"),  # PBS could not start it
    }
    # the server's full id is a key too
    assert pbs.parse_status(recorded("pbspro-qstat-xf.txt"), ["201.pbsserver"])
    assert not pbs.status_ok("91") and pbs.status_ok("92")


def test_pbspro_output_without_a_job_id_line_is_a_clear_error() -> None:
    pbs = load_schedulers()["PBSPro"]
    with pytest.raises(StatusOutputError, match=r"PBS Pro: .*'Job Id: <id>' line first"):
        pbs.parse_status("    job_state = R\n", ["1"])


# ------------------------------------------------------------------------------------ Grid Engine
@pytest.mark.parametrize("name", ["SGE", "UGE"])
def test_grid_engine_qstat_and_qacct(name: str) -> None:
    ge = load_schedulers()[name]
    live = states(ge.parse_status(recorded("sge-qstat.txt"), [str(i) for i in range(301, 312)]))
    assert live == {
        "301": ("running", None, "r"),
        "302": ("queued", None, "qw"),
        "303": ("queued", None, "Eqw"),
        "304": ("queued", None, "hqw"),
        "305": ("running", None, "r"),
        "306": ("running", None, "dr"),
        "310": ("running", None, "t"),
    }
    ended = states(ge.parse_status(recorded("sge-qacct.txt"), ["307", "308", "309", "311"]))
    assert ended == {
        "307": ("done", 0, "0"),
        "308": ("done", 2, "0"),
        "309": ("done", 137, "100"),
        "311": ("done", 1, "0"),  # task 2 of the array failed
    }
    assert not ge.status_ok("100")


def test_qacct_is_asked_one_job_per_call_in_one_shell() -> None:
    sge = load_schedulers()["SGE"]
    command = sge.history_command(["7", "8"])
    assert command is not None
    assert command.count("qacct -j") == 1 and 'for j in 7 8; do qacct -j "$j"' in command
    assert sge.status_command(["7", "8"]) == "qstat"


# ------------------------------------------------------------------------------------ LSF
def test_lsf_bjobs_exit_code_dash_is_zero_for_done() -> None:
    lsf = load_schedulers()["LSF"]
    ids = [str(i) for i in range(401, 410)]
    table = states(lsf.parse_status(recorded("lsf-bjobs.txt"), ids))
    assert table == {
        "401": ("running", None, "RUN"),
        "402": ("queued", None, "PEND"),
        "403": ("done", 0, "DONE"),
        "404": ("done", 3, "EXIT"),
        "405": ("done", None, "EXIT"),
        "406": ("queued", None, "PSUSP"),
        "407": ("running", None, "USUSP"),
        "408": ("done", 1, "EXIT"),  # one element of the array failed
        "409": ("unknown", None, "UNKWN"),
    }
    assert lsf.answered(255, recorded("lsf-bjobs.err"))
    assert not lsf.answered(255, "ssh: connect to host x port 22: Connection refused\n")


# ------------------------------------------------------------------------------------ PJM
def test_fugaku_reads_many_jobs_in_one_pass() -> None:
    fugaku = load_schedulers()["Fugaku"]
    stat = "JOB_ID ST\n" + "".join(f"{i} RUN\n" for i in range(1000, 1500))
    ids = [str(i) for i in range(900, 1600)]
    table = fugaku.parse_status(stat, ids)
    assert set(table) == {str(i) for i in range(1000, 1500)}
    after = "JOB_ID ST EC PC\n12 EXT 3 0\n13 CCL 0 1\n14 RJT 0 20\n"
    ended = states(fugaku.parse_status(after, ["12", "13", "14", "15"], after=True))
    assert ended == {"12": ("done", 3, "0"), "13": ("done", 0, "1"), "14": ("done", None, "20")}


# ------------------------------------------------------------------------------------ WHEEL's files
@pytest.mark.parametrize("name", ["open-wheel.jobScheduler.json", "wheel-2022.jobScheduler.json"])
def test_wheel_definition_files_are_accepted_unchanged(config_dir: Path, name: str) -> None:
    shutil.copy(DATA / name, config_dir / "jobScheduler.json")
    found = load_schedulers()
    wheel = json.loads((DATA / name).read_text())
    for key, entry in wheel.items():
        d = found[key]
        assert d.submit == entry["submit"] and not d.reads_status  # WHEEL's own commands
        # a status query still covers all jobs at once wherever the expressions name the job
        if "{{ JOBID }}" in (entry.get("reRunning") or entry.get("reFinishedState") or ""):
            assert not d.per_job


def test_open_wheel_slurm_entry_reads_its_sacct_output(config_dir: Path) -> None:
    shutil.copy(DATA / "open-wheel.jobScheduler.json", config_dir / "jobScheduler.json")
    slurm = load_schedulers()["SLURM"]
    ids = ["501", "502", "503"]
    assert slurm.status_command(ids) == (
        "sacct -P --delimiter=, -o JobID,State -n -j 501 -j 502 -j 503"
    )
    live = states(slurm.parse_status(recorded("open-wheel-sacct-stat.txt"), ids))
    assert live == {"501": ("running", None, None)}
    ended = states(slurm.parse_status(recorded("open-wheel-sacct-after.txt"), ids, after=True))
    assert ended == {"502": ("done", 0, "COMPLETED"), "503": ("done", 3, "FAILED")}
    # sharin's acceptableJobStatus for SLURM stays under the user's fields
    assert slurm.status_ok("COMPLETED") and not slurm.status_ok("FAILED")


def test_wheel_2022_entries_without_a_job_id_are_asked_one_job_at_a_time(
    config_dir: Path,
) -> None:
    shutil.copy(DATA / "wheel-2022.jobScheduler.json", config_dir / "jobScheduler.json")
    found = load_schedulers()
    for name in ("PBSPro", "Fugaku", "TCS", "UGE"):
        assert found[name].per_job, name
    tcs = found["TCS"]
    out = "JOB_ID ST EC PC\n12 EXT 2 0\n"
    assert states(tcs.parse_status(out, ["12"])) == {"12": ("done", None, None)}
    assert states(tcs.parse_status(out, ["12"], after=True)) == {"12": ("done", 2, "0")}


# ------------------------------------------------------------------------------------ the executor
_REPLAY = """#!/bin/sh
# replays a recorded output: $REPLAY/<name>[.<last argument>].{out,err,rc}
name=$(basename "$0")
printf '%s\\n' "$*" >> "$REPLAY/calls.$name"
eval last=\\${$#}
base="$REPLAY/$name"
[ -e "$REPLAY/$name.$last.out" ] || [ -e "$REPLAY/$name.$last.rc" ] && base="$REPLAY/$name.$last"
[ -e "$base.out" ] && cat "$base.out"
[ -e "$base.err" ] && cat "$base.err" >&2
exit $(cat "$base.rc" 2>/dev/null || echo 0)
"""


class Replay:
    def __init__(self, root: Path, config_dir: Path, scheduler: str) -> None:
        self.dir = root / "replay"
        self.bin = root / "replay-bin"
        self.dir.mkdir()
        self.bin.mkdir()
        for command in ("squeue", "sacct", "scontrol", "qstat", "qacct", "bjobs"):
            path = self.bin / command
            path.write_text(_REPLAY)
            path.chmod(0o755)
        (config_dir / "remotehost.json").write_text(
            json.dumps(
                [{"name": "c", "host": "c", "transport": "local", "jobScheduler": scheduler}]
            )
        )
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "REPLAY": str(self.dir)}
        self.executor = BatchExecutor(
            load_hosts()["c"], load_schedulers()[scheduler], LocalTransport(env)
        )

    def answer(self, command: str, out: str = "", err: str = "", rc: int = 0) -> None:
        (self.dir / f"{command}.out").write_text(out)
        (self.dir / f"{command}.err").write_text(err)
        (self.dir / f"{command}.rc").write_text(str(rc))

    def calls(self, command: str) -> list[str]:
        path = self.dir / f"calls.{command}"
        return path.read_text().splitlines() if path.exists() else []

    def status(self, *ids: str) -> dict[str, JobStatus]:
        handles = [JobHandle("batch", "c", i, {}) for i in ids]

        async def ask() -> dict[JobHandle, JobStatus]:
            try:
                return await self.executor.status(handles)
            finally:
                await self.executor.close()

        return {h.native_id: s for h, s in asyncio.run(ask()).items()}


def test_slurm_falls_back_to_sacct_when_squeue_rejects_a_purged_id(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "SLURM")
    r.answer("squeue", err="slurm_load_jobs error: Invalid job id specified\n", rc=1)
    r.answer("sacct", recorded("slurm-sacct.txt"))

    answer = r.status("103", "104", "108", "116")

    assert r.calls("squeue") == ["--noheader --states=all --format=%i|%T --jobs 103,104,108,116"]
    assert len(r.calls("sacct")) == 1  # the fallback answered: no second history query
    assert answer["103"] == JobStatus("finished", "job 103 exit code 0, state COMPLETED", 0)
    assert (answer["104"].state, answer["104"].returncode) == ("failed", 3)
    assert "state FAILED" in answer["104"].native
    assert answer["108"].state == "failed" and "TIMEOUT (the time limit was reached)" in (
        answer["108"].native
    )
    assert answer["116"] == JobStatus("queued", "PENDING")


def test_slurm_asks_accounting_only_for_the_jobs_that_left_the_queue(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "SLURM")
    r.answer("squeue", recorded("slurm-squeue.txt"))
    r.answer("sacct", recorded("slurm-sacct.txt"))

    answer = r.status("101", "102", "103", "104", "999")

    assert r.calls("sacct") == [
        "--noheader --parsable2 --delimiter=| --format=JobID,State,ExitCode --jobs 103,104,999"
    ]
    assert answer["101"] == JobStatus("running", "RUNNING")
    assert answer["102"] == JobStatus("queued", "PENDING")
    assert answer["103"].state == "finished"
    assert answer["104"].state == "failed"
    assert answer["999"] == JobStatus("unknown", "no record")  # gone, no history: never success


def test_slurm_without_accounting_asks_slurmctld_job_by_job(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "SLURM")
    r.answer("squeue", "101|RUNNING\n")
    r.answer("sacct", err="Slurm accounting storage is disabled\n", rc=1)
    lines = recorded("slurm-scontrol.txt").splitlines(keepends=True)
    r.answer("scontrol.117", lines[0])
    r.answer("scontrol.118", lines[1])
    r.answer("scontrol.119", lines[2] + lines[3])  # an array job: a line per task
    r.answer("scontrol.121", err="slurm_load_jobs error: Invalid job id specified\n", rc=1)

    answer = r.status("101", "117", "118", "119", "121")

    assert r.calls("scontrol") == [f"-o show job {j}" for j in ("117", "118", "119", "121")]
    assert answer["101"] == JobStatus("running", "RUNNING")
    assert answer["117"] == JobStatus("finished", "job 117 exit code 0, state COMPLETED", 0)
    assert (answer["118"].state, answer["118"].returncode) == ("failed", 3)
    assert answer["119"].state == "failed" and "TIMEOUT" in answer["119"].native  # task 2
    assert answer["121"] == JobStatus("unknown", "no record")


def test_scontrol_lines_are_read() -> None:
    slurm = load_schedulers()["SLURM"]
    table = states(slurm.parse_status(recorded("slurm-scontrol.txt"), ["117", "118", "119"]))
    assert table == {
        "117": ("done", 0, "COMPLETED"),
        "118": ("done", 3, "FAILED"),
        "119": ("done", 143, "TIMEOUT"),
    }
    with pytest.raises(StatusOutputError, match="JobId= and JobState="):
        slurm.parse_status("JobId=5 JobName=x\n", ["5"])


def test_pbs_without_history_never_takes_a_vanished_job_for_a_success(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "PBSProWithoutHistory")
    r.answer("qstat", err="qstat: Unknown Job Id 5.pbsserver\n", rc=153)

    assert r.status("5") == {"5": JobStatus("unknown", "no record")}
    assert r.calls("qstat") == ["-f 5"]


def test_a_vanished_job_without_history_fails_with_a_clear_message(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "PBSProWithoutHistory")
    r.answer("qstat", err="qstat: Unknown Job Id 5.pbsserver\n", rc=153)
    r.executor.interval = 0.05
    spec = TaskSpec(key="t", name="t", workdir=tmp_path, script="run.sh", env={}, log_dir=tmp_path)

    async def wait() -> JobResult:
        try:
            return await r.executor.wait(JobHandle("batch", "c", "5", {}), spec)
        finally:
            await r.executor.close()

    result = asyncio.run(wait())
    assert result.returncode is None and not result.ok
    assert "keeps no finished jobs" in result.message


def test_grid_engine_reads_live_jobs_from_qstat_and_the_rest_from_qacct(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "SGE")
    r.answer("qstat", recorded("sge-qstat.txt"))
    records = recorded("sge-qacct.txt").split("=" * 62 + "\n")[1:]
    for record in records[:3]:
        job = next(x.split()[1] for x in record.splitlines() if x.startswith("jobnumber"))
        r.answer(f"qacct.{job}", "=" * 62 + "\n" + record)
    r.answer("qacct.404", err="error: job id 404 not found\n", rc=1)

    answer = r.status("301", "302", "307", "308", "309", "404")

    assert r.calls("qstat") == [""]
    assert r.calls("qacct") == ["-j 307", "-j 308", "-j 309", "-j 404"]
    assert answer["301"].state == "running" and answer["302"].state == "queued"
    assert (answer["307"].state, answer["308"].returncode) == ("finished", 2)
    assert answer["309"].state == "failed" and "status code 100" in answer["309"].native
    assert answer["404"].state == "unknown"


def test_lsf_jobs_it_no_longer_knows_do_not_fail_the_query(
    tmp_path: Path, config_dir: Path
) -> None:
    r = Replay(tmp_path, config_dir, "LSF")
    r.answer("bjobs", recorded("lsf-bjobs.txt"), recorded("lsf-bjobs.err"), rc=255)

    answer = r.status("401", "403", "404", "999")

    assert answer["401"] == JobStatus("running", "RUN")
    assert answer["403"].state == "finished"
    assert (answer["404"].state, answer["404"].returncode) == ("failed", 3)
    assert answer["999"].state == "unknown"
    assert r.executor.queries == 2  # bjobs, then bjobs -a for 999: nothing more


def test_an_expression_that_cannot_capture_the_id_is_searched_job_by_job(
    config_dir: Path,
) -> None:
    entry = {
        "submit": "qsub",
        "del": "qdel",
        "stat": "qstat",
        "reJobID": "(\\d+)",
        "reRunning": "(?<={{ JOBID }}) (?:R|Q)$",  # a look-behind must keep a fixed width
        "reReturnCode": "(?<={{ JOBID }}) E (\\d+)$",
    }
    (config_dir / "jobScheduler.json").write_text(json.dumps({"Mine": entry}))
    mine = load_schedulers()["Mine"]
    assert states(mine.parse_status("12 R\n13 E 4\n", ["12", "13"])) == {
        "12": ("running", None, None)
    }
    ended = mine.parse_status("12 R\n13 E 4\n", ["12", "13"], after=True)
    assert states(ended) == {"13": ("done", 4, None)}
