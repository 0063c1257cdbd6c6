"""What each scheduler family needs beyond WHEEL's regular expressions: its status commands, a
reader of their output that goes through it **once** (a table for every job it names), and its
script directives.

A built-in ``jobScheduler.json`` entry names its family with sharin's ``"family"`` key. The
readers here are used only while the entry's commands and regular expressions are sharin's own:
a user's file that changes ``stat``, ``statAfter`` or a regular expression is read with those
regular expressions instead, as WHEEL reads it.

Output formats (the vendors' documentation): Slurm ``squeue -o``/``sacct -P``, PBS Pro
``qstat -f``, Grid Engine ``qstat`` and ``qacct -j``, LSF ``bjobs -o``; Fujitsu PJM (Fugaku,
TCS) is read by its entry's regular expressions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import ExecutorError

__all__ = [
    "DONE",
    "FAMILIES",
    "QUEUED",
    "RUNNING",
    "UNKNOWN",
    "Directives",
    "Family",
    "JobState",
    "StatusOutputError",
]

QUEUED, RUNNING, DONE, UNKNOWN = "queued", "running", "done", "unknown"


@dataclass(frozen=True, slots=True)
class JobState:
    """One job in a status output: ``queued``, ``running``, ``done`` (with the exit code and
    the scheduler's status word or code, when it gives them) or ``unknown``."""

    state: str
    returncode: int | None = None
    status: str | None = None
    #: the scheduler's own words for how the job ended, when it gives them (Grid Engine's
    #: ``failed 37  : qmaster enforced h_rt, h_cpu, or h_vmem limit``)
    reason: str | None = field(default=None, compare=False)

    @property
    def live(self) -> bool:
        return self.state in (QUEUED, RUNNING)


class StatusOutputError(ExecutorError):
    """A status command printed something its reader cannot read."""


def _bad(family: str, line: str, expected: str) -> StatusOutputError:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return StatusOutputError(
        f"{family}: cannot read the status line {shown!r}: expected {expected}; "
        "check that the host's status command prints its usual format"
    )


def _worse(a: JobState, b: JobState, ok: frozenset[str]) -> JobState:
    """The state a job with parts (array tasks, runs) ``a`` and ``b`` is in."""
    if a.live or b.live:
        if a.state == RUNNING or b.state == RUNNING:
            return JobState(RUNNING, None, a.status if a.state == RUNNING else b.status)
        return a if a.live else b
    if a.state == UNKNOWN or b.state == UNKNOWN:
        return a if a.state == UNKNOWN else b
    for x in (a, b):
        if x.status not in ok or x.returncode != 0:
            return x
    return a


def _merge_into(table: dict[str, JobState], key: str, st: JobState, ok: frozenset[str]) -> None:
    old = table.get(key)
    table[key] = st if old is None else _worse(old, st, ok)


@dataclass(frozen=True)
class Directives:
    """Resources a task asks for; each scheduler writes them as its own directive lines."""

    nodes: int | None = None
    cores: int | None = None  #: cores (processes) per node
    elapsed: int | None = None  #: seconds
    memory: int | None = None  #: MiB per node
    extra: tuple[str, ...] = ()  #: free-form lines, with or without the directive prefix

    def __bool__(self) -> bool:
        return any(x is not None for x in (self.nodes, self.cores, self.elapsed, self.memory)) or (
            bool(self.extra)
        )


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def option_keys(text: str) -> set[str]:
    """The options a directive's text sets: ``--time=1:00`` → ``--time``; ``-l walltime=1:00,
    mem=2gb`` → ``-l``, ``-l:walltime``, ``-l:mem``; ``-N2`` → ``-N2``, ``-N``."""
    try:
        tokens = shlex.split(text, comments=False)
    except ValueError:
        tokens = text.split()
    keys: set[str] = set()
    option: str | None = None
    for tok in tokens:
        if tok.startswith("-") and len(tok) > 1:
            name, eq, value = tok.partition("=")
            keys.add(name)
            if not tok.startswith("--") and len(name) > 2:
                keys.add(name[:2])
            option = name
            if not eq:
                continue
            tok = value
        if option is None:
            continue
        for piece in re.split(r"[,:+\s]", tok):
            k, eq, _ = piece.partition("=")
            if eq and k:
                keys.add(f"{option}:{k}")
    return keys


class Family:
    """A scheduler family: its directive prefix and resource spellings; subclasses that read
    status output set ``reads_status``."""

    name: ClassVar[str] = ""
    prefix: ClassVar[str] = ""
    #: the options that name the queue, so a script's own queue directive keeps the command line's away
    queue_keys: ClassVar[frozenset[str]] = frozenset()
    reads_status: ClassVar[bool] = False
    #: status words (or codes) of a job that ended well
    ok_status: ClassVar[frozenset[str]] = frozenset({"0"})

    # -------------------------------------------------------------- directives
    def resource_lines(self, d: Directives) -> list[tuple[str, frozenset[str]]]:
        """Each directive's text (after the prefix) and the option keys that, set by the
        script, keep it out."""
        raise NotImplementedError

    def script_keys(self, script: str) -> set[str]:
        """The option keys the script's own directive header sets."""
        keys: set[str] = set()
        for line in _header(script):
            if line.startswith(self.prefix):
                keys |= option_keys(line[len(self.prefix) :])
        return keys

    def directive_lines(self, d: Directives, script: str) -> list[str]:
        """The directive lines to add to ``script``: none the script sets itself, none twice."""
        have = self.script_keys(script)
        own = {ln.strip() for ln in _header(script)}
        out: list[str] = []
        for text, keys in self.resource_lines(d):
            if not keys & have:
                out.append(f"{self.prefix} {text}")
        for raw in d.extra:
            text = raw.strip()
            if text.startswith(self.prefix):
                text = text[len(self.prefix) :].strip()
            line = f"{self.prefix} {text}"
            given = option_keys(text)
            if line in own or line in out or (given and given <= have):
                continue
            out.append(line)
        return out

    # -------------------------------------------------------------- arrays and chains
    #: the variable in which a sub job of a job array finds its index (None: no arrays)
    array_var: ClassVar[str | None] = None
    #: the lowest index an array may have: sub job *n* runs as index ``n + array_base``
    array_base: ClassVar[int] = 0
    #: lines a sub job's wrapper runs before the script (PBS starts jobs in the home directory)
    array_prologue: ClassVar[tuple[str, ...]] = ()
    #: which "start after" conditions a dependent job can be given: ``any`` (after the
    #: job ended), ``ok`` (after it ended with exit code 0), ``notok`` (after it failed)
    depend_kinds: ClassVar[frozenset[str]] = frozenset()
    #: whether a job waiting for the end of another (``any``) runs when that one was deleted
    #: before it ran (PBS deletes it too)
    any_after_deleted: ClassVar[bool] = True

    def array_id(self, job_id: str) -> str:
        """How status and delete commands name a whole job array."""
        return job_id

    def subjob_key(self, job_id: str, index: int) -> str:
        """A sub job's key in the tables :meth:`parse` makes."""
        return f"{job_id}[{index}]"

    def subjobs(self, table: dict[str, JobState], job_id: str) -> dict[int, JobState]:
        """The sub jobs of array ``job_id`` a table holds, by the index the scheduler gave them."""
        first = self.subjob_key(job_id, 0)
        cut = first.rindex("0")
        head, tail = first[:cut], first[cut + 1 :]
        out: dict[int, JobState] = {}
        for key, st in table.items():
            if key.startswith(head) and key.endswith(tail):
                index = key[len(head) : len(key) - len(tail)]
                if index.isascii() and index.isdigit():
                    out[int(index)] = st
        return out

    def dependency_option(self, conditions: Sequence[tuple[str, str]]) -> str:
        """The submit option that makes a job wait for ``conditions`` ((kind, job id) pairs,
        all of which must hold)."""
        raise NotImplementedError

    # -------------------------------------------------------------- status
    def status_command(self, stat: str, stat_after: str, ids: Sequence[str], joined: str) -> str:
        """``joined``: the ids as the entry's ``statDelimiter`` joins them."""
        return _cmd(stat, joined)

    def history_command(self, stat_after: str, ids: Sequence[str], joined: str) -> str | None:
        return _cmd(stat_after, joined)

    def answered(self, returncode: int, stderr: str) -> bool:
        """Whether a status command that exited ``returncode`` still gave an answer."""
        return returncode == 0

    def parse(self, text: str) -> dict[str, JobState]:
        raise NotImplementedError


def _whole(text: str) -> bool:
    """A whole number as the commands print it: ASCII digits, maybe after a minus."""
    return text.isascii() and text.removeprefix("-").isdigit()


def _first_line(text: str) -> str:
    return next((x for x in text.splitlines() if x.strip()), "")


def _cmd(base: str, joined: str) -> str:
    return f"{base}{'' if base.endswith(' ') else ' '}{joined}"


def _header(script: str) -> Iterable[str]:
    """The lines of a script's directive header: comments and blank lines up to the first command."""
    for line in script.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return
        yield s


# ------------------------------------------------------------------------------------------ Slurm
_SLURM_QUEUED = frozenset(
    "PENDING REQUEUED REQUEUE_HOLD REQUEUE_FED RESV_DEL_HOLD SPECIAL_EXIT".split()
)
_SLURM_RUNNING = frozenset(
    "RUNNING CONFIGURING COMPLETING SUSPENDED STOPPED SIGNALING STAGE_OUT RESIZING".split()
)
_SLURM_DONE = frozenset(
    "COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL PREEMPTED OUT_OF_MEMORY BOOT_FAIL DEADLINE "
    "REVOKED".split()
)
_SLURM_ROW = "'JOBID|STATE' (squeue -o '%i|%T') or 'JOBID|STATE|EXIT:SIGNAL' (sacct -P)"
_SCONTROL_FIELD = re.compile(r"(?:^| )(JobId|ArrayJobId|ArrayTaskId|JobState|ExitCode)=(\S*)")


class Slurm(Family):
    name = "Slurm"
    prefix = "#SBATCH"
    queue_keys = frozenset({"-p", "--partition"})
    reads_status = True
    ok_status = frozenset({"COMPLETED"})

    def resource_lines(self, d: Directives) -> list[tuple[str, frozenset[str]]]:
        out: list[tuple[str, frozenset[str]]] = []
        if d.nodes is not None:
            out.append((f"--nodes={d.nodes}", frozenset({"-N", "--nodes"})))
        if d.cores is not None:
            out.append((f"--ntasks-per-node={d.cores}", frozenset({"--ntasks-per-node"})))
        if d.elapsed is not None:
            out.append((f"--time={_hms(d.elapsed)}", frozenset({"-t", "--time"})))
        if d.memory is not None:
            out.append((f"--mem={d.memory}M", frozenset({"--mem", "--mem-per-cpu"})))
        return out

    array_var = "SLURM_ARRAY_TASK_ID"
    depend_kinds = frozenset({"any", "ok", "notok"})

    def subjob_key(self, job_id: str, index: int) -> str:
        return f"{job_id}_{index}"

    def dependency_option(self, conditions: Sequence[tuple[str, str]]) -> str:
        # all must hold (','); a job whose condition can no longer hold is cancelled, not
        # left pending for ever
        words = {"any": "afterany", "ok": "afterok", "notok": "afternotok"}
        joined = ",".join(f"{words[k]}:{j}" for k, j in conditions)
        return f"--dependency={joined} --kill-on-invalid-dep=yes"

    def status_command(self, stat: str, stat_after: str, ids: Sequence[str], joined: str) -> str:
        # squeue exits 1 for the whole list when one id has left its memory: then accounting
        history = self.history_command(stat_after, ids, joined)
        return f"{_cmd(stat, joined)} 2>/dev/null || {history}"

    def history_command(self, stat_after: str, ids: Sequence[str], joined: str) -> str | None:
        # without accounting (no slurmdbd) sacct fails: then what slurmctld still remembers
        quoted = " ".join(shlex.quote(i) for i in ids)
        return (
            f"{_cmd(stat_after, joined)} || {{ for j in {quoted}; do "
            'scontrol -o show job "$j" 2>/dev/null; done; exit 0; }'
        )

    def parse(self, text: str) -> dict[str, JobState]:
        table: dict[str, JobState] = {}
        ok = self.ok_status
        known: dict[tuple[str, str], JobState] = {}  # (state, exit code) → its JobState
        for line in text.splitlines():
            if line.startswith("JobId="):
                self._scontrol(table, line)
                continue
            fields = line.strip().split("|")
            if len(fields) == 1 and not fields[0]:
                continue
            if len(fields) not in (2, 3) or not fields[0] or not fields[1].split():
                raise _bad(self.name, line, _SLURM_ROW)
            job = fields[0]
            if "." in job:
                continue  # a step (id.batch, id.extern, id.0): the job's own row says it
            key = (fields[1], fields[2] if len(fields) == 3 else "")
            st = known.get(key)
            if st is None:
                st = known[key] = self._state(line, *key)
            if "_" in job or "+" in job:  # array task id_3, pending tasks id_[4-9], het job id+0
                _merge_into(table, job, st, ok)
                _merge_into(table, re.split(r"[_+]", job, maxsplit=1)[0], st, ok)
            elif job in table:
                _merge_into(table, job, st, ok)
            else:
                table[job] = st
        return table

    def _scontrol(self, table: dict[str, JobState], line: str) -> None:
        """One line of ``scontrol -o show job``: ``JobId=7 … JobState=FAILED … ExitCode=3:0``."""
        found = dict(_SCONTROL_FIELD.findall(line))
        if not found.get("JobId") or not found.get("JobState"):
            raise _bad(self.name, line, "JobId= and JobState= (scontrol -o show job)")
        st = self._state(line, found["JobState"], found.get("ExitCode", ""))
        job = found["JobId"]
        if "ArrayTaskId" in found and "ArrayJobId" in found:
            job = f"{found['ArrayJobId']}_{found['ArrayTaskId']}"
            _merge_into(table, found["ArrayJobId"], st, self.ok_status)
        _merge_into(table, job, st, self.ok_status)

    def _state(self, line: str, field: str, exit_code: str) -> JobState:
        word = field.split()[0]  # "CANCELLED by 1000"
        if word in _SLURM_QUEUED:
            return JobState(QUEUED, None, word)
        if word in _SLURM_RUNNING:
            return JobState(RUNNING, None, word)
        if word not in _SLURM_DONE:
            return JobState(UNKNOWN, None, word)
        rc: int | None = None
        if exit_code:
            code, colon, sig = exit_code.partition(":")
            if not (_whole(code) and (not colon or (_whole(sig) and sig[0] != "-"))):
                raise _bad(self.name, line, "an exit code as 'EXIT:SIGNAL', e.g. 0:0")
            rc = int(code)
            if rc == 0 and colon and int(sig):
                rc = 128 + int(sig)
        return JobState(DONE, rc, word)


# ------------------------------------------------------------------------------------------ PBS Pro
_PBS_QUEUED = frozenset("QHWTM")
_PBS_RUNNING = frozenset("REBSU")
_PBS_DONE = frozenset("FX")
#: a job's first line, or one of the attributes read (qstat indents them by four spaces; a
#: value too long for one line goes on over lines that start with a tab)
_PBS_LINE = re.compile(r"\n(?:Job Id:([^\n]*)|    (job_state|substate|Exit_status) = ([^\n]*))")


class PBSPro(Family):
    name = "PBS Pro"
    prefix = "#PBS"
    queue_keys = frozenset({"-q"})
    reads_status = True
    ok_status = frozenset({"92", "93"})  # substate finished; Exit_status tells success
    #: qstat prints the jobs it knows and exits 153 when one id is unknown to it
    unknown_rc: ClassVar[int] = 153

    def resource_lines(self, d: Directives) -> list[tuple[str, frozenset[str]]]:
        out: list[tuple[str, frozenset[str]]] = []
        chunk = [str(d.nodes if d.nodes is not None else 1)]
        if d.cores is not None:
            chunk.append(f"ncpus={d.cores}:mpiprocs={d.cores}")
        if d.memory is not None:
            chunk.append(f"mem={d.memory}mb")
        if d.nodes is not None or len(chunk) > 1:
            keys = frozenset({"-l:select", "-l:nodes", "-l:ncpus", "-l:mem"})
            out.append(("-l select=" + ":".join(chunk), keys))
        if d.elapsed is not None:
            out.append((f"-l walltime={_hms(d.elapsed)}", frozenset({"-l:walltime"})))
        return out

    array_var = "PBS_ARRAY_INDEX"
    array_prologue = ('cd "$PBS_O_WORKDIR" || exit 1',)
    depend_kinds = frozenset({"any", "ok", "notok"})
    any_after_deleted = False  # afterany "will not run if a job … was deleted without … run"

    def array_id(self, job_id: str) -> str:
        return f"{job_id}[]"  # qstat and qdel name a whole array 12[]

    def dependency_option(self, conditions: Sequence[tuple[str, str]]) -> str:
        words = {"any": "afterany", "ok": "afterok", "notok": "afternotok"}
        return "-W depend=" + ",".join(f"{words[k]}:{j}" for k, j in conditions)

    def answered(self, returncode: int, stderr: str) -> bool:
        return returncode in (0, self.unknown_rc)

    def parse(self, text: str) -> dict[str, JobState]:
        table: dict[str, JobState] = {}
        body = text.lstrip()
        if not body:
            return table
        if not body.startswith("Job Id:"):
            raise _bad(self.name, _first_line(body), "a 'Job Id: <id>' line first (qstat -f)")
        known: dict[tuple[str, str, str], JobState] = {}
        rows = _PBS_LINE.findall("\n" + body)
        rows.append(("\0", "", ""))  # closes the last job
        job = ""
        word = sub = code = None
        # one pass over the lines that matter: each job's first line and three attributes
        for head, key, value in rows:
            if key == "job_state":
                word = word if word is not None else value.strip()
            elif key == "substate":
                sub = sub if sub is not None else value.strip()
            elif key:
                code = code if code is not None else value.strip()
            else:
                if job:
                    attrs = (word or "", sub or "", code if code is not None else "-")
                    st = known.get(attrs)
                    if st is None:
                        st = known[attrs] = self._state(job, word or "", sub, code)
                    table[job] = st
                    table.setdefault(job.split(".", 1)[0], st)
                job, word, sub, code = head.strip(), None, None, None
                if (not job or " " in job) and head != "\0":
                    raise _bad(self.name, f"Job Id:{head}", "'Job Id: <id>'")
        return table

    def _state(self, job: str, word: str, sub: str | None, raw: str | None) -> JobState:
        if word in _PBS_QUEUED:
            return JobState(QUEUED, None, word)
        if word in _PBS_RUNNING:
            return JobState(RUNNING, None, word)
        if word not in _PBS_DONE:
            return JobState(UNKNOWN, None, word or None)
        rc: int | None = None
        if raw is not None:
            if not _whole(raw):
                raise _bad(self.name, f"Exit_status = {raw}", "a whole number")
            rc = int(raw)
            if rc >= 256:  # killed by a signal: 256 + the signal
                rc = 128 + rc - 256
        return JobState(DONE, rc, sub or word)


class PBSProWithoutHistory(PBSPro):
    name = "PBS Pro (no job history)"
    depend_kinds = frozenset()  # a step's outcome is gone once it left qstat

    def history_command(self, stat_after: str, ids: Sequence[str], joined: str) -> str | None:
        return None  # a job that left qstat is gone: no exit code to be had


# ------------------------------------------------------------------------------------ Grid Engine
_SGE_ROW = "'job-ID prior name user state ...' rows (qstat)"
#: the line between two qacct records, and the three lines of a record that are read
_QACCT_LINE = re.compile(r"\n(?:(=)====+|(jobnumber|taskid|failed|exit_status)[ \t]+([^\n]*))")


class GridEngine(Family):
    name = "Grid Engine"
    prefix = "#$"
    queue_keys = frozenset({"-q"})
    reads_status = True
    ok_status = frozenset({"0"})

    def resource_lines(self, d: Directives) -> list[tuple[str, frozenset[str]]]:
        if d.nodes is not None:
            raise ExecutorError(
                "Grid Engine has no node count; ask for slots in your site's parallel "
                "environment instead, e.g. jobDirectives ['-pe mpi 64'], and clear nodes"
            )
        out: list[tuple[str, frozenset[str]]] = []
        if d.cores is not None:
            out.append((f"-pe smp {d.cores}", frozenset({"-pe"})))
        if d.elapsed is not None:
            out.append((f"-l h_rt={_hms(d.elapsed)}", frozenset({"-l:h_rt"})))
        if d.memory is not None:
            out.append((f"-l h_vmem={d.memory}M", frozenset({"-l:h_vmem", "-l:mem_free"})))
        return out

    array_var = "SGE_TASK_ID"
    array_base = 1  # task ids start at 1
    depend_kinds = frozenset({"any"})  # -hold_jid waits for the end, whatever the exit code

    def dependency_option(self, conditions: Sequence[tuple[str, str]]) -> str:
        return "-hold_jid " + ",".join(j for _, j in conditions)

    def status_command(self, stat: str, stat_after: str, ids: Sequence[str], joined: str) -> str:
        return stat  # every job of the user, in one list

    def history_command(self, stat_after: str, ids: Sequence[str], joined: str) -> str | None:
        # qacct -j reads one job per call; one shell runs them all (exit 1: not in the file yet)
        quoted = " ".join(shlex.quote(i) for i in ids)
        return (
            f'for j in {quoted}; do {stat_after} "$j"; r=$?; '
            '[ "$r" -le 1 ] || exit "$r"; done; exit 0'
        )

    def parse(self, text: str) -> dict[str, JobState]:
        if text.lstrip().startswith("====="):
            return self._accounting(text)
        table: dict[str, JobState] = {}
        known: dict[str, JobState] = {}
        for line in text.splitlines():
            s = line.split()
            if not s or s[0] == "job-ID" or s[0].startswith("---"):
                continue
            if len(s) < 5 or not s[0].isdigit():
                raise _bad(self.name, line, _SGE_ROW)
            word = s[4]
            st = known.get(word)
            if st is None:
                st = known[word] = self._state(word)
            if s[0] in table:
                _merge_into(table, s[0], st, self.ok_status)
            else:
                table[s[0]] = st
            # an array's task: the column after the slots (a queued range, 1-10:1, is not one)
            task = s[9:10] if len(s) > 7 and not s[7].isdigit() else s[8:9]
            if task and task[0].isdigit():
                _merge_into(table, f"{s[0]}[{task[0]}]", st, self.ok_status)
        return table

    @staticmethod
    def _state(word: str) -> JobState:
        low = word.lower()
        if "q" in low or "h" in low or "w" in low:
            return JobState(QUEUED, None, word)  # qw, hqw, hRwq; Eqw waits for `qmod -cj`
        if any(c in low for c in "rtsd"):
            return JobState(RUNNING, None, word)  # r, t, Rr, s, S, T, dr
        return JobState(UNKNOWN, None, word)

    def _accounting(self, text: str) -> dict[str, JobState]:
        table: dict[str, JobState] = {}
        known: dict[tuple[str, str], JobState] = {}
        rows = _QACCT_LINE.findall("\n" + text)
        rows.append(("=", "", ""))  # closes the last record
        job: str | None = None
        failed = raw = task = ""
        started = False
        for sep, key, value in rows:
            if not sep:
                if key == "jobnumber":
                    job = job or value
                elif key == "taskid":
                    task = task or value.strip()
                elif key == "failed":
                    failed = failed or value
                else:
                    raw = raw or value
                continue
            if started:
                if not job or not job.split():
                    raise _bad(self.name, "=" * 10, "a 'jobnumber' line in each qacct record")
                st = known.get((failed, raw))
                if st is None:
                    code, word = raw.split()[:1], failed.split()[:1]
                    rc = int(code[0]) if code and _whole(code[0]) else None
                    said = failed.partition(":")[2].strip() or None
                    st = known[failed, raw] = JobState(DONE, rc, word[0] if word else "0", said)
                job = job.split()[0]
                if job in table:
                    _merge_into(table, job, st, self.ok_status)
                else:
                    table[job] = st
                if task.isdigit():  # an array's task ("undefined" for other jobs)
                    _merge_into(table, f"{job}[{task}]", st, self.ok_status)
            started, job, failed, raw, task = True, None, "", "", ""
        return table


# ------------------------------------------------------------------------------------------ LSF
_LSF_QUEUED = frozenset({"PEND", "PSUSP", "WAIT"})
_LSF_RUNNING = frozenset({"RUN", "USUSP", "SSUSP", "PROV"})
_LSF_DONE = frozenset({"DONE", "EXIT"})
_LSF_ROW = (
    "'JOBID STAT EXIT_CODE' (bjobs -o 'jobid stat exit_code') or 'JOBID INDEX STAT EXIT_CODE'"
)


class LSF(Family):
    name = "LSF"
    prefix = "#BSUB"
    queue_keys = frozenset({"-q"})
    reads_status = True
    ok_status = frozenset({"DONE"})

    def resource_lines(self, d: Directives) -> list[tuple[str, frozenset[str]]]:
        out: list[tuple[str, frozenset[str]]] = []
        if d.nodes is not None or d.cores is not None:
            n = (d.nodes or 1) * (d.cores or 1)
            span = f"span[ptile={d.cores}]" if d.nodes is not None else "span[hosts=1]"
            if d.cores is None:
                span = "span[ptile=1]"
            out.append((f"-n {n}", frozenset({"-n"})))
            out.append((f'-R "{span}"', frozenset({"-R"})))
        if d.elapsed is not None:
            minutes = max(1, (d.elapsed + 59) // 60)
            out.append((f"-W {minutes // 60}:{minutes % 60:02d}", frozenset({"-W"})))
        if d.memory is not None:
            out.append((f"-M {d.memory}MB", frozenset({"-M"})))
        return out

    array_var = "LSB_JOBINDEX"
    array_base = 1  # array indices start at 1
    depend_kinds = frozenset({"any", "ok", "notok"})

    def dependency_option(self, conditions: Sequence[tuple[str, str]]) -> str:
        words = {"any": "ended", "ok": "done", "notok": "exit"}
        expression = " && ".join(f"{words[k]}({j})" for k, j in conditions)
        # -ti: a job whose condition can no longer hold ends at once instead of pending
        return f"-w {shlex.quote(expression)} -ti"

    def answered(self, returncode: int, stderr: str) -> bool:
        if returncode == 0:
            return True
        # bjobs exits 255 when one of the ids is not found, and still lists the others
        said = [ln for ln in stderr.splitlines() if ln.strip()]
        return returncode == 255 and bool(said) and all("is not found" in ln for ln in said)

    def parse(self, text: str) -> dict[str, JobState]:
        table: dict[str, JobState] = {}
        known: dict[tuple[str, str], JobState] = {}
        for line in text.splitlines():
            s = line.split()
            if not s:
                continue
            if len(s) == 4 and s[1].isdigit():  # jobid jobindex stat exit_code (arrays)
                s = [s[0] if s[1] == "0" else f"{s[0]}[{s[1]}]", s[2], s[3]]
            if len(s) != 3 or not s[0].split("[")[0].isdigit():
                raise _bad(self.name, line, _LSF_ROW)
            job, word, code = s
            st = known.get((word, code))
            if st is None:
                st = known[word, code] = self._state(line, word, code)
            if job in table or "[" in job:
                _merge_into(table, job, st, self.ok_status)
                _merge_into(table, job.split("[", 1)[0], st, self.ok_status)
            else:
                table[job] = st
        return table

    def _state(self, line: str, word: str, code: str) -> JobState:
        if word in _LSF_QUEUED:
            return JobState(QUEUED, None, word)
        if word in _LSF_RUNNING:
            return JobState(RUNNING, None, word)
        if word not in _LSF_DONE:
            return JobState(UNKNOWN, None, word)  # UNKWN, ZOMBI
        if code == "-":
            return JobState(DONE, 0 if word == "DONE" else None, word)
        if not _whole(code):
            raise _bad(self.name, line, "an exit code: a whole number or '-'")
        return JobState(DONE, int(code), word)


# ------------------------------------------------------------------------------------------ PJM
class PJM(Family):
    """Fujitsu TCS / PJM (Fugaku): directives only; status is read by the entry's regexes."""

    name = "PJM"
    prefix = "#PJM"
    queue_keys = frozenset({"-L:rscgrp"})

    def resource_lines(self, d: Directives) -> list[tuple[str, frozenset[str]]]:
        out: list[tuple[str, frozenset[str]]] = []
        if d.nodes is not None:
            out.append((f"-L node={d.nodes}", frozenset({"-L:node"})))
        if d.cores is not None:
            out.append(
                (f"--mpi max-proc-per-node={d.cores}", frozenset({"--mpi:max-proc-per-node"}))
            )
        if d.elapsed is not None:
            out.append((f"-L elapse={_hms(d.elapsed)}", frozenset({"-L:elapse"})))
        if d.memory is not None:
            out.append((f"-L node-mem={d.memory}Mi", frozenset({"-L:node-mem"})))
        return out


FAMILIES: dict[str, Family] = {
    "slurm": Slurm(),
    "pbspro": PBSPro(),
    "pbspro-without-history": PBSProWithoutHistory(),
    "gridengine": GridEngine(),
    "lsf": LSF(),
    "pjm": PJM(),
}
