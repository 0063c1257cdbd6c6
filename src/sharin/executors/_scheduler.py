"""Batch schedulers as data: WHEEL's ``jobScheduler.json`` entries, read and checked once.

sharin ships its own definitions (``jobScheduler.json`` next to this module). A
``jobScheduler.json`` in the configuration directory (the one that holds ``remotehost.json``) is
merged over them field by field, as OPEN-WHEEL 2025 does, so a WHEEL user's file works unchanged. Both
WHEEL generations are understood: OPEN-WHEEL's ``reRunning`` + ``statAfter`` and WHEEL 2022's
``reFinishedState`` (with a ``stat`` list joined by ``;``).

Everything specific to one scheduler lives in its entry: the commands, the regular expressions
that read their output (``{{ JOBID }}`` stands for the job's id) and, as sharin's additions, how
step and bulk jobs are asked for (``stepOption``, ``stepJoinOption``, ``bulkOption``), where a
job's standard output goes (``stdoutFile``, ``stderrFile``), how the script is handed to the
submit command (``scriptArgument``) and which family of schedulers it belongs to (``family``:
its directive format and, while the entry keeps sharin's commands, a reader of its status output
in ``_schedulers``).

Every status output is read **once** into a table ``{job id: JobState}``
(:meth:`SchedulerDefinition.parse_status`): a regular expression with ``{{ JOBID }}`` becomes one
expression that captures the id, scanned over the output one time, however many jobs it names.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExecutorError, Problem, ProjectError
from ..model import config_dir, read_json_object
from ..model._hosts import problem_list
from ..model._jsonio import json_kind, show_json
from ._schedulers import (
    DONE,
    FAMILIES,
    RUNNING,
    Directives,
    Family,
    JobState,
    StatusOutputError,
    _header,
)

__all__ = [
    "BulkOutcome",
    "Directives",
    "JobState",
    "Outcome",
    "SchedulerDefinition",
    "StatusOutputError",
    "directives_from",
    "job_script_name",
    "load_schedulers",
]

_JOBID = "{{ JOBID }}"
_BULK_ROW = r"(?<![\w.])%s\[(\d+)\]"
#: what ``{{ JOBID }}`` becomes in the one expression that reads every job of an output
_ID_NAME = "sharin_job_id"
_ID_GROUP = rf"(?<![\w.\[])(?P<{_ID_NAME}>[\w.\[\]-]+)"
_ID_AGAIN = f"(?P={_ID_NAME})"
#: the fields a reader in ``_schedulers`` stands for: a user entry that changes one is read
#: with its own regular expressions
_READING_KEYS = (
    "stat",
    "statAfter",
    "statDelimiter",
    "reRunning",
    "reFinishedState",
    "reReturnCode",
    "reJobStatusCode",
    "reJobStatus",
)


class _Scan:
    """A ``{{ JOBID }}`` template as one expression: every id it matches, with its group 1."""

    def __init__(self, template: str) -> None:
        first, *rest = template.split(_JOBID)
        self.pattern = re.compile(first + _ID_GROUP + _ID_AGAIN.join(rest), re.M)
        ident = self.pattern.groupindex[_ID_NAME]
        self.value = 2 if ident == 1 else 1
        self.has_value = self.pattern.groups >= 2
        self.template = template

    def scan(self, text: str) -> tuple[dict[str, str | None], set[str]]:
        """The first match of each id, and the ids that are the head of a longer matched one
        (``12`` of ``12.batch``): only those need a closer look."""
        found: dict[str, str | None] = {}
        heads: set[str] = set()
        ident = self.pattern.groupindex[_ID_NAME]
        value = self.value if self.has_value else ident
        for m in self.pattern.finditer(text):
            job, got = m.group(ident, value)
            if job in found:
                continue
            found[job] = got if self.has_value else None
            if not job.isalnum():
                heads.update(job[:i] for i, ch in enumerate(job) if i and not ch.isalnum())
        return found, heads


@dataclass(frozen=True)
class Outcome:
    """What the scheduler says about a job that has ended."""

    returncode: int | None
    status: str | None


@dataclass(frozen=True)
class BulkOutcome:
    """The ended sub jobs of a bulk job: index → (exit code, job status code)."""

    subjobs: dict[int, Outcome]


@dataclass(frozen=True)
class SchedulerDefinition:
    name: str
    submit: str
    delete: str
    re_job_id: re.Pattern[str]
    stat: str
    stat_after: str
    re_running: str | None  #: while this matches, the job is queued or running
    re_finished: str | None  #: WHEEL 2022: when this matches, the job has ended
    re_return_code: str
    re_job_status: str | None
    queue_opt: str = ""
    stat_delimiter: str = " "
    acceptable_status: frozenset[str] = frozenset({"0"})
    acceptable_rt: frozenset[int] = frozenset()
    re_exceeded: re.Pattern[str] | None = None
    exceeded_rts: frozenset[int] = frozenset()
    step_option: str | None = None
    step_join_option: str | None = None
    bulk_option: str | None = None
    bulkstat: str | None = None
    bulkstat_after: str | None = None
    re_sub_return_code: str | None = None
    re_sub_job_status: str | None = None
    stdout_file: str | None = None
    stderr_file: str | None = None
    #: how the script is given to ``submit`` (LSF reads directives from standard input)
    script_argument: str = "./{script}"
    #: the scheduler family: directive format, and (``reads_status``) the reader of its output
    family: Family | None = field(default=None, compare=False)
    reads_status: bool = False
    #: what a job status code means (sharin's ``jobStatusMeaning``), for messages
    status_meaning: dict[str, str] = field(default_factory=dict, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def supports_step(self) -> bool:
        return self.step_option is not None

    @property
    def supports_bulk(self) -> bool:
        # sub jobs are read by the family's reader, or by the entry's reSubReturnCode
        readable = self.arrays or self.re_sub_return_code is not None
        return self.bulk_option is not None and self.bulkstat is not None and readable

    # ---------------------------------------------------------------- commands
    def stat_command(self, ids: list[str], *, bulk: bool = False, after: bool = False) -> str:
        if bulk:
            base = (self.bulkstat_after if after else self.bulkstat) or ""
        else:
            base = self.stat_after if after else self.stat
        joined = self.stat_delimiter.join(ids)
        sep = "" if base.endswith(" ") else " "
        return f"{base}{sep}{joined}"

    @property
    def per_job(self) -> bool:
        """Whether a status command can ask for one job only: WHEEL 2022 expressions without
        ``{{ JOBID }}`` cannot tell the jobs of one output apart."""
        if self.reads_status:
            return False
        state = self.re_running if self.re_running is not None else self.re_finished
        return state is None or _JOBID not in state

    @property
    def history_per_job(self) -> bool:
        """Whether a history query can ask for one job only (no ``{{ JOBID }}`` in reReturnCode)."""
        return not self.reads_status and _JOBID not in self.re_return_code

    def status_command(self, ids: Sequence[str]) -> str:
        """One query for every job in ``ids`` that says which are queued or running."""
        if self.reads_status and self.family is not None:
            joined = self.stat_delimiter.join(shlex.quote(i) for i in ids)
            return self.family.status_command(self.stat, self.stat_after, ids, joined)
        return self.stat_command(list(ids))

    def history_command(self, ids: Sequence[str]) -> str | None:
        """One query for the exit codes of the jobs in ``ids`` that left the queue, or None
        when the scheduler keeps no record of them."""
        if self.reads_status and self.family is not None:
            joined = self.stat_delimiter.join(shlex.quote(i) for i in ids)
            return self.family.history_command(self.stat_after, ids, joined)
        return self.stat_command(list(ids), after=True)

    def cancel_command(self, job_id: str) -> str:
        return f"{self.delete} {shlex.quote(job_id)}"

    def answered(self, returncode: int, stderr: str) -> bool:
        """Whether a status command that exited ``returncode`` still answered (its output is read)."""
        if returncode == 0 or returncode in self.acceptable_rt:
            return True
        return (
            self.reads_status
            and self.family is not None
            and self.family.answered(returncode, stderr)
        )

    # ---------------------------------------------------------------- reading output
    @functools.cached_property
    def _scans(self) -> dict[str, _Scan]:
        out: dict[str, _Scan] = {}
        for key, template in (
            ("running", self.re_running),
            ("finished", self.re_finished),
            ("rc", self.re_return_code),
            ("status", self.re_job_status),
        ):
            if template is not None and _JOBID in template:
                try:
                    out[key] = _Scan(template)
                except re.error:  # e.g. the id inside a look-behind: searched job by job
                    continue
        return out

    def parse_status(
        self, text: str, ids: Sequence[str], *, after: bool = False
    ) -> dict[str, JobState]:
        """Read one status output (``stat``, or ``statAfter`` when ``after``) **once**: the
        state of each job in ``ids`` it speaks of. A job it does not name is left out (after
        ``stat``: not queued or running any more; after ``statAfter``: no record).

        Raises :class:`StatusOutputError` when the output cannot be read."""
        if self.reads_status and self.family is not None:
            table = self.family.parse(text)
            return {i: table[i] for i in ids if i in table}
        if after:
            return self._read_after(text, ids)
        out: dict[str, JobState] = {}
        if self.re_running is not None:
            hits = self._matches("running", self.re_running, text, ids)
            return {i: JobState(RUNNING) for i in hits}
        assert self.re_finished is not None
        ended = self._matches("finished", self.re_finished, text, ids)
        for i in ids:
            out[i] = JobState(DONE) if i in ended else JobState(RUNNING)
        return out

    def _matches(
        self, key: str, template: str, text: str, ids: Sequence[str]
    ) -> dict[str, str | None]:
        """The ids in ``ids`` that ``template`` matches in ``text``, with its group 1."""
        scan = self._scans.get(key)
        if scan is None and _JOBID in template:
            found: dict[str, str | None] = {}
            for i in ids:
                m = self._pattern(template, i).search(text)
                if m is not None:
                    found[i] = m.group(1) if m.re.groups else None
            return found
        if scan is None:  # no {{ JOBID }}: the output is about the one job asked for
            m = re.compile(template, re.M).search(text)
            if m is None:
                return {}
            value = m.group(1) if m.re.groups else None
            return {i: value for i in ids}
        found, heads = scan.scan(text)
        out = {i: found[i] for i in ids if i in found}
        for i in ids:
            if i not in out and i in heads:  # 12 in front of 12.x: as the per-job search reads it
                m = self._pattern(template, i).search(text)
                if m is not None:
                    out[i] = m.group(1) if m.re.groups else None
        return out

    def _read_after(self, text: str, ids: Sequence[str]) -> dict[str, JobState]:
        rcs = self._matches("rc", self.re_return_code, text, ids)
        statuses = (
            self._matches("status", self.re_job_status, text, ids) if self.re_job_status else {}
        )
        out: dict[str, JobState] = {}
        known: dict[tuple[str | None, str | None], JobState] = {}
        for i in ids:
            raw = rcs.get(i)
            status = statuses.get(i)
            if raw is None and status is None:
                continue
            st = known.get((raw, status))
            if st is None:
                rc = int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
                st = known[raw, status] = JobState(DONE, rc, status)
            if st.returncode is None and st.status is None:
                continue  # an exit code that is no number, and nothing else: no record
            out[i] = st
        return out

    def _pattern(self, template: str, job_id: str, *, bulk: bool = False) -> re.Pattern[str]:
        ident = re.escape(job_id) + (r"(?:\[\d+\])?" if bulk else "")
        if _JOBID in template:
            # a job id never matches the tail of a longer one (12 in 112)
            text = template.replace(_JOBID, r"(?<![\w.\[])" + ident)
        else:
            text = template
        return re.compile(text, re.M)

    def is_running(self, output: str, job_id: str, *, bulk: bool = False) -> bool:
        if self.re_running is not None:
            return self._pattern(self.re_running, job_id, bulk=bulk).search(output) is not None
        assert self.re_finished is not None
        return self._pattern(self.re_finished, job_id, bulk=bulk).search(output) is None

    def outcome(self, output: str, job_id: str) -> Outcome | None:
        """The exit code and status code of an ended job, or None when the output lacks it."""
        m = self._pattern(self.re_return_code, job_id).search(output)
        if m is None:
            return None
        status = None
        if self.re_job_status:
            s = self._pattern(self.re_job_status, job_id).search(output)
            status = s.group(1) if s else None
        try:
            rc = int(m.group(1))
        except (IndexError, ValueError):
            return None
        return Outcome(rc, status)

    def bulk_outcome(self, output: str, job_id: str) -> BulkOutcome | None:
        assert self.re_sub_return_code is not None
        row = re.compile(_BULK_ROW % re.escape(job_id))
        rc_re = re.compile(self.re_sub_return_code)
        st_re = re.compile(self.re_sub_job_status) if self.re_sub_job_status else None
        subjobs: dict[int, Outcome] = {}
        for line in output.splitlines():
            r = row.search(line)
            if r is None:
                continue
            m = rc_re.search(line)
            if m is None:
                continue
            s = st_re.search(line) if st_re is not None else None
            subjobs[int(r.group(1))] = Outcome(int(m.group(1)), s.group(1) if s else None)
        return BulkOutcome(subjobs) if subjobs else None

    # ---------------------------------------------------------------- directives
    def script_sets_queue(self, script: str) -> bool:
        """Whether the script's own directives choose the queue (then the command line does not)."""
        f = self.family
        return f is not None and bool(f.queue_keys & f.script_keys(script))

    def with_directives(self, script: str, d: Directives) -> str | None:
        """``script`` with the directive lines for ``d`` added after its first line (``#!``),
        or None when there is nothing to add. The script's own directives win: an option it
        sets is neither repeated nor overridden."""
        if not d:
            return None
        if self.family is None:
            raise ExecutorError(
                f"scheduler {self.name} has no known directive format, so nodes, cores, "
                "elapsedTime, memory and jobDirectives cannot be written; put the directives "
                "in the script, or give the entry a family "
                f"({', '.join(sorted(FAMILIES))}) in jobScheduler.json"
            )
        lines = self.family.directive_lines(d, script)
        if not lines:
            return None
        head, nl, rest = script.partition("\n")
        if not head.startswith("#!"):
            head, nl, rest = "", "", script
        return "".join(x + "\n" for x in ([head] if nl or head else []) + lines) + rest

    # ---------------------------------------------------------------- arrays and chains
    @property
    def chains_steps(self) -> bool:
        """Whether a step job is a chain of dependent jobs (every scheduler but PJM)."""
        return self.family is not None and bool(self.family.depend_kinds)

    @property
    def arrays(self) -> bool:
        """Whether a bulk job is a job array read by the family (every scheduler but PJM)."""
        return self.reads_status and self.family is not None and self.family.array_var is not None

    def array_script(self, script_text: str, script: str, d: Directives) -> str:
        """The script each sub job of a job array runs: the script's directives (and those
        for ``d``), ``PJM_BULKNUM`` set from the scheduler's index, then the script itself."""
        f = self.family
        assert f is not None and f.array_var is not None
        own = [ln for ln in _header(script_text) if ln.startswith(f.prefix)]
        index = f"${f.array_var}" if not f.array_base else f"$(({f.array_var} - {f.array_base}))"
        lines = [
            "#!/bin/sh",
            *own,
            *f.directive_lines(d, script_text),
            "# sharin: the sub job's number as WHEEL names it on Fugaku",
            *f.array_prologue,
            f"PJM_BULKNUM={index}; export PJM_BULKNUM",
            f'exec ./{shlex.quote(script)} "$@"',
        ]
        return "\n".join(lines) + "\n"

    def step_conditions(
        self, statement: str | None, earlier: Sequence[tuple[int, str, str | None]], where: str
    ) -> list[tuple[str, str]]:
        """What a step waits for, as (kind, job id) pairs that must all hold: ``any`` the end
        of the step before it, ``ok``/``notok`` from its dependency statement (and those of
        earlier steps whose statement deletes the steps after them). ``earlier``: the
        (number, job id, statement) of each step submitted before it, in order."""
        f = self.family
        assert f is not None
        conditions: list[tuple[str, str]] = []
        for i, (_, _, stmt) in enumerate(earlier):
            if stmt and parse_statement(stmt).deletes_later:
                conditions += _statement_conditions(f, self.name, stmt, earlier[:i], where)
        if statement:
            conditions += _statement_conditions(f, self.name, statement, earlier, where)
        if earlier:
            last = earlier[-1][1]
            if not any(j == last for _, j in conditions):
                conditions.append(("any", last))  # the steps run one after another
        out: list[tuple[str, str]] = []
        for x in conditions:
            if x not in out:
                out.append(x)
        return out

    def job_id(self, output: str) -> str | None:
        m = self.re_job_id.search(output)
        return m.group(1) if m else None

    def exceeded(self, result_rc: int, output: str) -> bool:
        if result_rc in self.exceeded_rts:
            return True
        return self.re_exceeded is not None and self.re_exceeded.search(output) is not None

    def status_ok(self, status: str | None) -> bool:
        return status is None or status in self.acceptable_status


# ------------------------------------------------------------------------------- step statements
_STATEMENT = re.compile(
    r"sd=(ec|pc)(==|!=|<=|>=|<|>)([0-9][0-9,\-]*)(?::(one|after|all)?((?::[0-9]+)*))?"
)
#: (field, operator, value) of the statements a "start after" condition expresses, and the
#: condition: the statement deletes the step when the exit code is non-zero → start after ok
_KINDS = {
    ("ec", "!=", "0"): "ok",
    ("ec", ">", "0"): "ok",
    ("ec", ">=", "1"): "ok",
    ("ec", "==", "0"): "notok",
    ("ec", "<", "1"): "notok",
    ("ec", "<=", "0"): "notok",
}


@dataclass(frozen=True)
class Statement:
    """A PJM step dependency statement ``sd=<ec|pc><op><value>[:<deletetype>[:<steps>]]``."""

    field: str
    op: str
    value: str
    deletetype: str  #: one, after or all
    steps: tuple[int, ...]  #: the steps it looks at (none: the step before)

    @property
    def deletes_later(self) -> bool:
        return self.deletetype in ("after", "all")


def parse_statement(text: str) -> Statement:
    m = _STATEMENT.fullmatch(text.strip())
    if m is None:
        raise ValueError(text)
    steps = tuple(int(x) for x in (m.group(5) or "").split(":") if x)
    return Statement(m.group(1), m.group(2), m.group(3), m.group(4) or "one", steps)


def _statement_conditions(
    f: Family,
    scheduler: str,
    text: str,
    earlier: Sequence[tuple[int, str, str | None]],
    where: str,
) -> list[tuple[str, str]]:
    """A statement as "start after" conditions on the steps it looks at, or one clear error
    when the scheduler cannot express it."""
    try:
        st = parse_statement(text)
    except ValueError:
        raise ExecutorError(
            f"{where} [dependencyForm]: {text!r} is not a dependency statement; write e.g. "
            "sd=ec!=0:all"
        ) from None
    kind = _KINDS.get((st.field, st.op, st.value))
    if kind is None or kind not in f.depend_kinds:
        if st.field == "pc":
            why = "PJM's job status code (pc) has no counterpart there"
        elif kind is None:
            why = "only a start after success (sd=ec!=0) or after failure (sd=ec==0) translates"
        else:
            why = f"{f.name} can only start a job after another ended, whatever its exit code"
        raise ExecutorError(
            f"{where} [dependencyForm]: {text!r} cannot be kept on {scheduler}, where a step "
            f"job is a chain of dependent jobs: {why}; use sd=ec!=0 (run only after the step "
            "before succeeded), sd=ec==0 (only after it failed), or clear useDependency"
            + (
                " (the step then runs after the one before, whatever its exit code)"
                if "any" in f.depend_kinds
                else ""
            )
        )
    ids = {num: job for num, job, _ in earlier}
    looked_at = st.steps or ((earlier[-1][0],) if earlier else ())
    # a step number that was not submitted is ignored, as PJM ignores it
    return [(kind, ids[n]) for n in looked_at if n in ids]


# ------------------------------------------------------------------------------------ directives
#: the task properties that ask for resources, written as the scheduler's directives
DIRECTIVE_PROPERTIES = ("nodes", "cores", "elapsedTime", "memory", "jobDirectives")
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.I)
_UNIT_MIB = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}


def _count(value: Any, where: str, key: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExecutorError(
            f"{where} [{key}]: must be a whole number of at least 1, not {show_json(value)}"
        )
    return value


def _elapsed(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    fail = ExecutorError(
        f"{where} [elapsedTime]: must be a time as HH:MM:SS, MM:SS or whole seconds, "
        f"not {show_json(value)}"
    )
    if isinstance(value, bool):
        raise fail
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        parts = value.strip().split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() and p.isascii() for p in parts):
            raise fail
        seconds = 0
        for p in parts:
            seconds = seconds * 60 + int(p)
    else:
        raise fail
    if seconds < 1:
        raise fail
    return seconds


def _memory(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    fail = ExecutorError(
        f"{where} [memory]: must be an amount such as 4G, 500M or a whole number of MiB, "
        f"not {show_json(value)}"
    )
    if isinstance(value, bool):
        raise fail
    if isinstance(value, int):
        mib = float(value)
    elif isinstance(value, str) and value.isascii() and (m := _MEMORY.fullmatch(value)):
        mib = float(m.group(1)) * _UNIT_MIB[m.group(2).lower()]
    else:
        raise fail
    if mib < 1:
        raise fail
    return int(mib + 0.999999)


def directives_from(props: Mapping[str, Any], where: str) -> Directives:
    """A task's resource properties (``nodes``, ``cores`` per node, ``elapsedTime``,
    ``memory`` per node, ``jobDirectives``), checked; ``where`` names the file in errors."""
    extra = props.get("jobDirectives")
    if extra is None or extra == "":
        lines: tuple[str, ...] = ()
    elif isinstance(extra, str):
        lines = tuple(x for x in extra.splitlines() if x.strip())
    elif isinstance(extra, list) and all(isinstance(x, str) for x in extra):
        lines = tuple(x for x in extra if x.strip())
    else:
        raise ExecutorError(
            f"{where} [jobDirectives]: must be a list of directive lines (strings), "
            f"not {show_json(extra)}"
        )
    for x in lines:
        if "\n" in x or "\r" in x or "\0" in x:
            raise ExecutorError(
                f"{where} [jobDirectives]: {show_json(x)} holds a line break; give one "
                "directive per list entry"
            )
    return Directives(
        nodes=_count(props.get("nodes"), where, "nodes"),
        cores=_count(props.get("cores"), where, "cores"),
        elapsed=_elapsed(props.get("elapsedTime"), where),
        memory=_memory(props.get("memory"), where),
        extra=lines,
    )


def job_script_name(script: str) -> str:
    """The file a script with directives added is submitted as (next to the script)."""
    head, tail = posixpath.split(script)
    stem, dot, suffix = tail.rpartition(".")
    # it starts as the script does: PBS and Grid Engine name the job (and its output) after it
    name = f"{stem}.sharin.{suffix}" if dot and stem else f"{tail}.sharin"
    return posixpath.join(head, name)


def _text(entry: Mapping[str, Any], key: str, fail: Any, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None or value == "" or value == []:
        if required:
            raise fail(key, "is required")
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ; ".join(value)  # WHEEL 2022: several commands, run one after the other
    if not isinstance(value, str):
        raise fail(key, f"must be a string, not {json_kind(value)}")
    return value


def _regex(entry: Mapping[str, Any], key: str, fail: Any, *, required: bool = False) -> str | None:
    text = _text(entry, key, fail, required=required)
    if text is None:
        return None
    try:
        re.compile(text.replace(_JOBID, "0"), re.M)
    except re.error as e:
        raise fail(key, f"is not a valid regular expression ({e})") from None
    if key not in ("reJobID", "reExceededLimitError") and "(" not in text and "Code" in key:
        raise fail(key, "needs a capture group, e.g. (\\d+), around the code")
    return text


def _meanings(entry: Mapping[str, Any], fail: Any) -> dict[str, str]:
    value = entry.get("jobStatusMeaning") or {}
    if not isinstance(value, dict):
        raise fail("jobStatusMeaning", "must be an object: status code → meaning")
    return {str(k): str(v) for k, v in value.items()}


def _codes(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    return list(value) if isinstance(value, list) else [value]


def _whole_numbers(entry: Mapping[str, Any], key: str, fail: Any) -> frozenset[int]:
    out: set[int] = set()
    for x in _codes(entry.get(key)):
        if isinstance(x, str) and x.strip().lstrip("-").isdigit():
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, int):
            raise fail(key, f"must hold whole numbers (exit codes), not {show_json(x)}")
        out.add(x)
    return frozenset(out)


def parse_definition(name: str, entry: Mapping[str, Any], path: Path | str) -> SchedulerDefinition:
    def fail(key: str, message: str) -> ProjectError:
        return ProjectError(f"{path} [{name}.{key}]: {message}")

    submit = _text(entry, "submit", fail, required=True)
    delete = _text(entry, "del", fail, required=True)
    stat = _text(entry, "stat", fail, required=True)
    re_job_id = _regex(entry, "reJobID", fail, required=True)
    re_running = _regex(entry, "reRunning", fail)
    re_finished = _regex(entry, "reFinishedState", fail)
    if re_running is None and re_finished is None:
        raise fail("reRunning", "is required (or WHEEL 2022's reFinishedState)")
    re_rc = _regex(entry, "reReturnCode", fail, required=True)
    exceeded = _regex(entry, "reExceededLimitError", fail)
    assert submit and delete and stat and re_job_id and re_rc
    step = entry.get("supportStepjob", entry.get("stepjob"))
    bulk = entry.get("supportBulkjob", entry.get("bulkjob"))
    step_option = _text(entry, "stepOption", fail) or (
        '--step --sparam "jnam={name},sn={number}{dependency}"' if step else None
    )
    bulk_option = _text(entry, "bulkOption", fail) or (
        '--bulk --sparam "{start}-{end}"' if bulk else None
    )
    if step is False:
        step_option = None
    if bulk is False:
        bulk_option = None
    acceptable_rt = _whole_numbers(entry, "acceptableRt", fail)
    exceeded_rts = _whole_numbers(entry, "exceededRtList", fail)
    statuses = _codes(entry.get("acceptableJobStatus"))
    family_name = _text(entry, "family", fail)
    family = None
    if family_name is not None:
        family = FAMILIES.get(family_name)
        if family is None:
            raise fail("family", f"must be one of {', '.join(sorted(FAMILIES))}")
    own_reader = entry.get("readsStatus", True)
    if not isinstance(own_reader, bool):
        raise fail("readsStatus", f"must be true or false, not {show_json(own_reader)}")
    script_argument = _text(entry, "scriptArgument", fail) or "./{script}"
    try:
        usable = "{script}" in script_argument and bool(script_argument.format(script="x"))
    except (KeyError, IndexError, ValueError):
        usable = False
    if not usable:
        raise fail(
            "scriptArgument", "must contain {script} and no other {…} field, e.g. './{script}'"
        )
    return SchedulerDefinition(
        name=name,
        submit=submit,
        delete=delete,
        re_job_id=re.compile(re_job_id, re.M),
        stat=stat,
        stat_after=_text(entry, "statAfter", fail) or stat,
        re_running=re_running,
        re_finished=re_finished,
        re_return_code=re_rc,
        re_job_status=_regex(entry, "reJobStatusCode", fail) or _regex(entry, "reJobStatus", fail),
        queue_opt=str(entry.get("queueOpt") or ""),
        stat_delimiter=str(entry.get("statDelimiter") or " "),
        acceptable_status=frozenset(str(x) for x in statuses) if statuses else frozenset({"0"}),
        acceptable_rt=acceptable_rt,
        re_exceeded=re.compile(exceeded, re.M) if exceeded else None,
        exceeded_rts=exceeded_rts,
        step_option=step_option,
        step_join_option=_text(entry, "stepJoinOption", fail),
        bulk_option=bulk_option,
        bulkstat=_text(entry, "bulkstat", fail),
        bulkstat_after=_text(entry, "bulkstatAfter", fail) or _text(entry, "bulkstat", fail),
        re_sub_return_code=_regex(entry, "reSubReturnCode", fail),
        re_sub_job_status=_regex(entry, "reSubJobStatusCode", fail),
        stdout_file=_text(entry, "stdoutFile", fail),
        stderr_file=_text(entry, "stderrFile", fail),
        script_argument=script_argument,
        family=family,
        reads_status=family is not None and family.reads_status and own_reader,
        status_meaning=_meanings(entry, fail),
        raw=dict(entry),
    )


#: what a scheduler needs; a user entry for a name sharin does not ship must give them all
_REQUIRED = ("submit", "del", "stat", "reJobID", "reReturnCode")


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of a jobScheduler.json, every field type-checked (all problems at once)."""
    from ..model import _schema  # msgspec is imported when the file is read

    data = read_json_object(path)
    problems: list[Problem] = []
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            problems.append(
                Problem(
                    str(path),
                    name,
                    "must be an object of fields (submit, stat, reJobID …), "
                    f"not {json_kind(entry)}",
                )
            )
            continue
        found = _schema.check_object(
            entry, _schema.SchedulerEntry, str(path), prefix=f"{name}.", strict=False
        )
        if found:
            problems += found
            continue
        typed = _schema.convert(entry, _schema.SchedulerEntry)
        entries[name] = {**entry, **_schema.present_fields(typed, entry)}
    if problems:
        raise ProjectError(problem_list(problems, str(path)))
    return entries


def _merge(
    builtin: Mapping[str, dict[str, Any]], user: Mapping[str, dict[str, Any]], path: Path
) -> dict[str, tuple[dict[str, Any], Path | str]]:
    """The user's entries over the built-in ones **field by field** (as OPEN-WHEEL 2025 does):
    ``{"Fugaku": {"submit": "mysub"}}`` keeps every other field of the built-in Fugaku. An
    entry for a name sharin does not ship must be complete."""
    out: dict[str, tuple[dict[str, Any], Path | str]] = {
        k: (v, "sharin's built-in jobScheduler.json") for k, v in builtin.items()
    }
    problems: list[Problem] = []
    for name, entry in user.items():
        if name in builtin:
            # WHEEL 2022 writes "" for an expression it leaves out (PBSProWithoutHistory's
            # reReturnCode): sharin's stays
            given = {k: v for k, v in entry.items() if not (k.startswith("re") and v == "")}
            merged = {**builtin[name], **given}
            # the user's expression of one kind replaces sharin's of the other kind
            if given.get("reFinishedState") and "reRunning" not in given:
                merged.pop("reRunning", None)
            if given.get("reRunning") and "reFinishedState" not in given:
                merged.pop("reFinishedState", None)
            if any(k in given and given[k] != builtin[name].get(k) for k in _READING_KEYS):
                merged["readsStatus"] = False  # the user's commands, read by the user's regexes
            out[name] = (merged, path)
            continue
        missing = [k for k in _REQUIRED if entry.get(k) in (None, "", [])]
        if all(entry.get(k) in (None, "") for k in ("reRunning", "reFinishedState")):
            missing.append("reRunning")
        if missing:
            shipped = ", ".join(sorted(builtin))
            problems.append(
                Problem(
                    str(path),
                    name,
                    f"is not a scheduler sharin ships ({shipped}), so it needs every field; "
                    f"missing: {', '.join(missing)}",
                )
            )
            continue
        out[name] = (entry, path)
    if problems:
        raise ProjectError(problem_list(problems, str(path)))
    return out


def load_schedulers(directory: Path | None = None) -> dict[str, SchedulerDefinition]:
    """Built-in definitions, with the configuration directory's ``jobScheduler.json`` merged
    over them field by field."""
    from importlib import resources  # only runs that use a scheduler pay for this import

    builtin_file = resources.files(__package__).joinpath("jobScheduler.json")
    builtin: dict[str, dict[str, Any]] = json.loads(builtin_file.read_text(encoding="utf-8"))
    user = (directory or config_dir()) / "jobScheduler.json"
    entries = _merge(builtin, _read(user), user) if user.is_file() else _merge(builtin, {}, user)
    return {name: parse_definition(name, entry, where) for name, (entry, where) in entries.items()}
