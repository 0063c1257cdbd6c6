"""Property-based tests of the status readers: any table of jobs written in the vendor's format
reads back as the same table; any other text reads as a table or fails with a clear error."""

from __future__ import annotations

import functools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.executors import load_schedulers
from sharin.executors._scheduler import JobState, StatusOutputError

DEFS = load_schedulers()
# every test: deadline=None, so that a loaded machine does not make them fail

Table = dict[str, JobState]


def tables(states: st.SearchStrategy[JobState]) -> st.SearchStrategy[Table]:
    ids = st.integers(1, 10**9).map(str)
    return st.dictionaries(ids, states, max_size=30)


def words(kind: str, options: str) -> st.SearchStrategy[JobState]:
    return st.sampled_from(options.split()).map(lambda w: JobState(kind, None, w))


# ------------------------------------------------------------------------------------ Slurm
_SLURM_LIVE = words("queued", "PENDING REQUEUED REQUEUE_HOLD SPECIAL_EXIT") | words(
    "running", "RUNNING CONFIGURING COMPLETING SUSPENDED STOPPED"
)
_SLURM_DONE_WORDS = st.sampled_from(
    "COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL PREEMPTED OUT_OF_MEMORY BOOT_FAIL".split()
)


@st.composite
def _sacct_row(draw: st.DrawFn) -> tuple[JobState, str]:
    word = draw(_SLURM_DONE_WORDS)
    rc, sig = draw(st.integers(0, 255)), draw(st.integers(0, 64))
    shown = word + (" by 1000" if word == "CANCELLED" and draw(st.booleans()) else "")
    expect = rc if rc or not sig else 128 + sig
    return JobState("done", expect, word), f"{shown}|{rc}:{sig}"


@settings(deadline=None)
@given(tables(_SLURM_LIVE | words("done", "COMPLETED FAILED TIMEOUT")))
def test_squeue_output_reads_back(table: Table) -> None:
    text = "".join(f"{i}|{s.status}\n" for i, s in table.items())
    assert DEFS["SLURM"].parse_status(text, list(table)) == table


@settings(deadline=None)
@given(st.dictionaries(st.integers(1, 10**9).map(str), _sacct_row(), max_size=30))
def test_sacct_output_reads_back(rows: dict[str, tuple[JobState, str]]) -> None:
    text = "".join(
        f"{i}|{r}\n{i}.batch|{r}\n{i}.extern|COMPLETED|0:0\n" for i, (_, r) in rows.items()
    )
    expect = {i: s for i, (s, _) in rows.items()}
    assert DEFS["SLURM"].parse_status(text, list(rows), after=True) == expect


# ------------------------------------------------------------------------------------ PBS Pro
_PBS = (
    words("queued", "Q H W T")
    | words("running", "R E B S")
    | st.builds(
        lambda rc, sub: JobState("done", rc, sub),
        st.none() | st.integers(-10, 255),
        st.sampled_from(["91", "92", "93"]),
    )
)


def _pbs_block(job: str, s: JobState) -> str:
    lines = [f"Job Id: {job}.server", "    Job_Name = run.sh"]
    if s.state == "done":
        lines.append("    job_state = F")
        if s.returncode is not None:
            lines.append(f"    Exit_status = {s.returncode}")
        lines.append(f"    substate = {s.status}")
    else:
        lines += [f"    job_state = {s.status}", "    substate = 42"]
    lines.append("    Variable_List = PBS_O_HOME=/home/u,\n\tPBS_O_WORKDIR = /home/u")
    return "\n".join(lines) + "\n\n"


@settings(deadline=None)
@given(tables(_PBS))
def test_qstat_f_output_reads_back(table: Table) -> None:
    text = "".join(_pbs_block(i, s) for i, s in table.items())
    assert DEFS["PBSPro"].parse_status(text, list(table)) == table


# ------------------------------------------------------------------------------------ Grid Engine
_SGE = words("queued", "qw hqw Eqw hRwq") | words("running", "r t Rr dr s S")


@settings(deadline=None)
@given(tables(_SGE))
def test_grid_engine_qstat_output_reads_back(table: Table) -> None:
    head = "job-ID  prior   name       user         state submit/start at     queue   slots\n"
    rule = "-" * 80 + "\n"
    rows = "".join(
        f"{i:>7} 0.55500 run.sh     u            {s.status:<5} 12/01/2026 10:00:00 all.q 1\n"
        for i, s in table.items()
    )
    assert DEFS["SGE"].parse_status(head + rule + rows if rows else "", list(table)) == table


@settings(deadline=None)
@given(
    tables(
        st.builds(
            lambda rc, failed: JobState("done", rc, failed),
            st.integers(0, 255),
            st.sampled_from(["0", "1", "100"]),
        )
    )
)
def test_qacct_output_reads_back(table: Table) -> None:
    text = "".join(
        f"{'=' * 62}\nqname        all.q\njobnumber    {i}\ntaskid       undefined\n"
        f"failed       {s.status}{' : assumedly after job' if s.status == '100' else ''}\n"
        f"exit_status  {s.returncode}\n"
        for i, s in table.items()
    )
    assert DEFS["UGE"].parse_status(text, list(table)) == table


# ------------------------------------------------------------------------------------ LSF
_LSF = (
    words("queued", "PEND PSUSP WAIT")
    | words("running", "RUN USUSP SSUSP PROV")
    | st.integers(0, 255).map(lambda rc: JobState("done", rc, "DONE" if rc == 0 else "EXIT"))
    | st.just(JobState("done", None, "EXIT"))
)


@settings(deadline=None)
@given(tables(_LSF))
def test_bjobs_output_reads_back(table: Table) -> None:
    def code(s: JobState) -> str:
        return "-" if s.returncode in (None, 0) else str(s.returncode)

    text = "".join(f"{i} {s.status} {code(s)}\n" for i, s in table.items())
    assert DEFS["LSF"].parse_status(text, list(table)) == table


# ------------------------------------------------------------------------------------ PJM
@settings(deadline=None)
@given(tables(st.just(JobState("running"))), st.sampled_from("QUE RUN HLD ACC RNA RNO".split()))
def test_pjstat_output_reads_back(table: Table, word: str) -> None:
    text = "JOB_ID ST\n" + "".join(f"{i} {word}\n" for i in table)
    assert DEFS["Fugaku"].parse_status(text, list(table)) == table


@settings(deadline=None)
@given(
    tables(
        st.builds(
            lambda rc, pc: JobState("done", rc, str(pc)), st.integers(0, 255), st.integers(0, 30)
        )
    )
)
def test_pjstat_history_reads_back(table: Table) -> None:
    text = "JOB_ID ST EC PC\n" + "".join(
        f"{i} EXT {s.returncode} {s.status}\n" for i, s in table.items()
    )
    assert DEFS["TCS"].parse_status(text, list(table), after=True) == table


# ------------------------------------------------------------------------------------ garbage
_READERS: list[Callable[[str, list[str]], object]] = [
    functools.partial(d.parse_status, after=after) for d in DEFS.values() for after in (False, True)
]
_ALPHABET = st.characters(codec="utf-8") | st.sampled_from(list("|=:[]_.-\n\t 0123456789"))
_GARBAGE = st.text(_ALPHABET, max_size=200) | st.sampled_from(
    ["Job Id: \n", "x|y|1:-2\n", "1|FAILED|²:0\n", "1 EXIT ²\n", "=====\nfailed\n"]
)


@settings(max_examples=300, deadline=None)
@given(_GARBAGE, st.lists(st.integers(0, 99).map(str), max_size=5))
def test_garbage_reads_as_a_table_or_a_clear_error(text: str, ids: list[str]) -> None:
    for read in _READERS:
        try:
            table = read(text, ids)
        except StatusOutputError as e:
            assert "cannot read the status line" in str(e) or "expected" in str(e)
            continue
        assert isinstance(table, dict) and set(table) <= set(ids)
