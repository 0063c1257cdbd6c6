"""Job arrays and dependent jobs in the scheduler families: every array written in the vendor's
format reads back as the same sub jobs (property tests), and a step's dependency statement
becomes the "start after" conditions it means, or one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.errors import ExecutorError
from sharin.executors import load_schedulers
from sharin.executors._scheduler import JobState, parse_statement

DEFS = load_schedulers()
Subs = dict[int, JobState]

ids = st.integers(1, 10**7).map(str)


def subjobs(states: st.SearchStrategy[JobState]) -> st.SearchStrategy[Subs]:
    return st.dictionaries(st.integers(1, 1000), states, min_size=1, max_size=20)


_SLURM = st.sampled_from(
    [
        JobState("done", 0, "COMPLETED"),
        JobState("done", 3, "FAILED"),
        JobState("done", 0, "TIMEOUT"),
    ]
)


@settings(deadline=None)
@given(st.dictionaries(ids, subjobs(_SLURM), max_size=5))
def test_sacct_array_rows_read_back_by_sub_job(arrays: dict[str, Subs]) -> None:
    f = DEFS["SLURM"].family
    assert f is not None
    text = "".join(
        f"{j}_{n}|{s.status}|{s.returncode}:0\n{j}_{n}.batch|{s.status}|{s.returncode}:0\n"
        for j, subs in arrays.items()
        for n, s in subs.items()
    )
    table = f.parse(text)
    for j, subs in arrays.items():
        assert f.subjobs(table, j) == subs
        assert not table[j].live  # the array's own row: how its worst sub job ended


@settings(deadline=None)
@given(ids, st.lists(st.sampled_from(["PENDING", "RUNNING", "COMPLETED"]), min_size=1, max_size=9))
def test_an_array_is_live_while_any_squeue_row_is(job: str, words: list[str]) -> None:
    f = DEFS["SLURM"].family
    assert f is not None
    table = f.parse("".join(f"{job}_{n}|{w}\n" for n, w in enumerate(words)))
    assert table[job].live == any(w != "COMPLETED" for w in words)


_LSF = st.sampled_from(
    [
        (JobState("queued", None, "PEND"), "PEND -"),
        (JobState("running", None, "RUN"), "RUN -"),
        (JobState("done", 0, "DONE"), "DONE -"),
        (JobState("done", 7, "EXIT"), "EXIT 7"),
        (JobState("done", None, "EXIT"), "EXIT -"),
    ]
)


@settings(deadline=None)
@given(st.dictionaries(ids, st.dictionaries(st.integers(1, 1000), _LSF, min_size=1, max_size=20)))
def test_bjobs_jobindex_rows_read_back_by_sub_job(
    arrays: dict[str, dict[int, tuple[JobState, str]]],
) -> None:
    f = DEFS["LSF"].family
    assert f is not None
    text = "".join(
        f"{j:<7} {n:<8} {row}\n" for j, subs in arrays.items() for n, (_, row) in subs.items()
    )
    table = f.parse(text)
    for j, subs in arrays.items():
        assert f.subjobs(table, j) == {n: s for n, (s, _) in subs.items()}
        assert table[j].live == any(s.live for s, _ in subs.values())


_PBS = st.sampled_from(
    [
        (JobState("queued", None, "Q"), "Q", "10", None),
        (JobState("running", None, "R"), "R", "42", None),
        (JobState("done", 0, "92"), "X", "92", "0"),
        (JobState("done", 2, "92"), "X", "92", "2"),
        (JobState("done", 143, "91"), "X", "91", "271"),
    ]
)


@settings(deadline=None)
@given(
    st.dictionaries(
        ids, st.dictionaries(st.integers(0, 1000), _PBS, min_size=1, max_size=20), max_size=5
    )
)
def test_qstat_t_sub_jobs_read_back(
    arrays: dict[str, dict[int, tuple[JobState, str, str, str | None]]],
) -> None:
    f = DEFS["PBSPro"].family
    assert f is not None
    out = []
    for j, subs in arrays.items():
        out += [f"Job Id: {j}[].server", "    job_state = B", "    substate = 42", ""]
        for n, (_, word, sub, code) in subs.items():
            out += [f"Job Id: {j}[{n}].server", f"    job_state = {word}", f"    substate = {sub}"]
            out += [f"    Exit_status = {code}"] if code is not None else []
            out.append("")
    table = f.parse("\n".join(out))
    for j, subs in arrays.items():
        assert f.subjobs(table, f.array_id(j).removesuffix("[]")) == {
            n: s for n, (s, *_) in subs.items()
        }
        assert table[f"{j}[]"].live


@settings(deadline=None)
@given(
    st.dictionaries(
        ids,
        st.dictionaries(st.integers(1, 1000), st.integers(0, 255), min_size=1, max_size=10),
        max_size=5,
    )
)
def test_qacct_task_records_read_back(arrays: dict[str, dict[int, int]]) -> None:
    f = DEFS["SGE"].family
    assert f is not None
    sep = "=" * 62
    text = "".join(
        f"{sep}\njobnumber    {j}\ntaskid       {n}\nfailed       0\nexit_status  {rc}\n"
        for j, subs in arrays.items()
        for n, rc in subs.items()
    )
    table = f.parse(text)
    for j, subs in arrays.items():
        assert f.subjobs(table, j) == {n: JobState("done", rc, "0") for n, rc in subs.items()}


@settings(deadline=None)
@given(ids, st.lists(st.sampled_from(["r", "t", "qw"]), min_size=1, max_size=9))
def test_grid_engine_qstat_task_rows(job: str, words: list[str]) -> None:
    f = DEFS["SGE"].family
    assert f is not None
    rows = []
    for n, w in enumerate(words, start=1):
        where = "" if w == "qw" else "all.q@vm "
        rows.append(f"{job:>7} 0.50000 run.sh root {w} 12/02/2026 02:37:30 {where}1 {n}")
    rows.append(f"{job:>7} 0.50000 run.sh root qw 12/02/2026 02:37:30 1 {len(words) + 1}-20:1")
    table = f.parse("\n".join(rows))
    tasks = f.subjobs(table, job)
    assert sorted(tasks) == list(range(1, len(words) + 1))  # a queued range is no task
    assert [tasks[n].state for n in sorted(tasks)] == [
        "queued" if w == "qw" else "running" for w in words
    ]
    assert table[job].live


# ------------------------------------------------------------------------------------ statements
EARLIER = [(0, "10", None), (1, "11", None)]


@pytest.mark.parametrize(
    ("scheduler", "statement", "earlier", "expected"),
    [
        ("SLURM", None, [], []),
        ("SLURM", None, EARLIER, [("any", "11")]),
        ("SLURM", "sd=ec!=0", EARLIER, [("ok", "11")]),
        ("SLURM", "sd=ec==0:one", EARLIER, [("notok", "11")]),
        ("SLURM", "sd=ec>0:all:0", EARLIER, [("ok", "10"), ("any", "11")]),
        ("SLURM", "sd=ec!=0:one:7", EARLIER, [("any", "11")]),  # no step 7: ignored, as PJM does
        (
            "LSF",
            None,
            [(0, "10", None), (1, "11", "sd=ec!=0:after")],  # it deletes the steps after it
            [("ok", "10"), ("any", "11")],
        ),
        ("SGE", None, EARLIER, [("any", "11")]),
    ],
)
def test_statements_become_start_after_conditions(
    scheduler: str,
    statement: str | None,
    earlier: list[tuple[int, str, str | None]],
    expected: list[tuple[str, str]],
) -> None:
    assert DEFS[scheduler].step_conditions(statement, earlier, "s/cmp.wheel.json") == expected


def test_dependency_options_of_each_scheduler() -> None:
    conditions = [("any", "11"), ("ok", "10")]
    options = {}
    for name in ("SLURM", "PBSPro", "LSF"):
        f = DEFS[name].family
        assert f is not None
        options[name] = f.dependency_option(conditions)
    assert options == {
        "SLURM": "--dependency=afterany:11,afterok:10 --kill-on-invalid-dep=yes",
        "PBSPro": "-W depend=afterany:11,afterok:10",
        "LSF": "-w 'ended(11) && done(10)' -ti",
    }
    f = DEFS["SGE"].family
    assert (
        f is not None and f.dependency_option([("any", "11"), ("any", "12")]) == "-hold_jid 11,12"
    )


@pytest.mark.parametrize(
    ("scheduler", "statement", "said"),
    [
        ("SLURM", "sd=pc==0", "PJM's job status code (pc) has no counterpart"),
        ("SLURM", "sd=ec==3", "only a start after success"),
        ("PBSPro", "sd=ec<2:all", "only a start after success"),
        ("SGE", "sd=ec!=0", "whatever its exit code"),
        ("SLURM", "ec is not zero", "is not a dependency statement"),
    ],
)
def test_statements_a_chain_cannot_keep_are_refused(
    scheduler: str, statement: str, said: str
) -> None:
    with pytest.raises(ExecutorError) as e:
        DEFS[scheduler].step_conditions(statement, EARLIER, "sj/s1/cmp.wheel.json")
    assert str(e.value).startswith("sj/s1/cmp.wheel.json [dependencyForm]: ")
    assert said in str(e.value)


@settings(deadline=None)
@given(
    st.sampled_from(["ec", "pc"]),
    st.sampled_from(["==", "!=", "<", ">", "<=", ">="]),
    st.integers(0, 255),
    st.sampled_from(["", ":", ":one", ":after", ":all"]),
    st.lists(st.integers(0, 99), max_size=3),
)
def test_statements_parse_back(item: str, op: str, value: int, kind: str, steps: list[int]) -> None:
    tail = kind + "".join(f":{n}" for n in steps) if kind or not steps else ""
    text = f"sd={item}{op}{value}{tail}"
    s = parse_statement(text)
    assert (s.field, s.op, s.value) == (item, op, str(value))
    assert s.deletetype == (kind.strip(":") or "one")
    assert s.steps == (tuple(steps) if tail else ())


def test_an_entry_whose_status_reading_is_the_users_has_no_arrays(tmp_path: Path) -> None:
    # the user's own squeue is read by the user's expressions: sharin's array reader does
    # not apply, and there is no reSubReturnCode to read sub jobs with, so no bulk jobs
    (tmp_path / "jobScheduler.json").write_text(
        json.dumps({"SLURM": {"stat": "squeue --noheader --format='%i|%T' --jobs"}})
    )
    mine = load_schedulers(tmp_path)["SLURM"]
    assert not mine.arrays and not mine.supports_bulk and mine.supports_step
    assert DEFS["SLURM"].supports_bulk
