"""Batch schedulers as data: WHEEL's ``jobScheduler.json`` entries, read and checked once.

sharin ships its own definitions (``jobScheduler.json`` next to this module). A
``jobScheduler.json`` in the configuration directory (the one that holds ``remotehost.json``) is
merged over them field by field, as OPEN-WHEEL 2025 does, so a WHEEL user's file works unchanged. Both
WHEEL generations are understood: OPEN-WHEEL's ``reRunning`` + ``statAfter`` and WHEEL 2022's
``reFinishedState`` (with a ``stat`` list joined by ``;``).

Everything specific to one scheduler lives in its entry: the commands, the regular expressions
that read their output (``{{ JOBID }}`` stands for the job's id) and, as sharin's additions, how
step and bulk jobs are asked for (``stepOption``, ``stepJoinOption``, ``bulkOption``) and where a
job's standard output goes (``stdoutFile``, ``stderrFile``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem, ProjectError
from ..model import config_dir, read_json_object
from ..model._hosts import problem_list
from ..model._jsonio import json_kind, show_json

__all__ = ["BulkOutcome", "Outcome", "SchedulerDefinition", "load_schedulers"]

_JOBID = "{{ JOBID }}"
_BULK_ROW = r"(?<![\w.])%s\[(\d+)\]"


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
    #: what a job status code means (sharin's ``jobStatusMeaning``), for messages
    status_meaning: dict[str, str] = field(default_factory=dict, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def supports_step(self) -> bool:
        return self.step_option is not None

    @property
    def supports_bulk(self) -> bool:
        return self.bulk_option is not None and self.bulkstat is not None

    # ---------------------------------------------------------------- commands
    def stat_command(self, ids: list[str], *, bulk: bool = False, after: bool = False) -> str:
        if bulk:
            base = (self.bulkstat_after if after else self.bulkstat) or ""
        else:
            base = self.stat_after if after else self.stat
        joined = self.stat_delimiter.join(ids)
        sep = "" if base.endswith(" ") else " "
        return f"{base}{sep}{joined}"

    # ---------------------------------------------------------------- reading output
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

    def job_id(self, output: str) -> str | None:
        m = self.re_job_id.search(output)
        return m.group(1) if m else None

    def exceeded(self, result_rc: int, output: str) -> bool:
        if result_rc in self.exceeded_rts:
            return True
        return self.re_exceeded is not None and self.re_exceeded.search(output) is not None

    def status_ok(self, status: str | None) -> bool:
        return status is None or status in self.acceptable_status


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
            out[name] = ({**builtin[name], **entry}, path)
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
