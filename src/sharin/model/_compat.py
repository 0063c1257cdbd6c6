"""Where a project leaves what WHEEL (OPEN-WHEEL) runs, and OPEN-WHEEL 2025's task fields.

:func:`wheel_notes` lists what sharin runs but WHEEL would not, or would run differently; they
are notes, not problems (``sharin validate`` prints them and still exits 0; ``--wheel`` makes
them problems). Each names the file and the field:

* a **directory into a viewer**: WHEEL's viewer reads every input as a file and fails the
  project on a directory (``EISDIR``; ``_viewerHandler`` in ``dispatcher.js``);
* **sharin-only host fields** in ``remotehost.json`` (``transport`` ...): OPEN-WHEEL's host
  schema has ``additionalProperties: false`` (``db/remotehostJsonSchema.js``);
* **parameter values with ``< > & " '``** in a study with target files: WHEEL renders target
  files with nunjucks' ``autoescape: true``, sharin does not escape;
* a **for loop with a fractional start, end or step**: WHEEL adds ``step`` in floating point
  (trip ``0.30000000000000004``), and its editor takes whole numbers only;
* a **sourceScript**: WHEEL sources it only before submitting a job (``executerManager.js``),
  sharin before the script of a task on this machine (its batch jobs do not source it yet);
* a **condition expression naming a variable WHEEL does not define there**: WHEEL evaluates it
  with only the components' ``env`` and its own variables declared (``evalCondition`` in
  ``dispatchUtils.js``: ``let KEY="value";`` each), so a name sharin finds in the process
  environment (``HOME``, ``SHARIN_TASK`` ...) is a ``ReferenceError`` in WHEEL;
* a task on a host whose **cleanupFlag** WHEEL reads otherwise (``_cleanup``): sharin removes
  its working directory there, WHEEL keeps it, or the other way round.

:func:`task_field_problems` checks the 2025 task fields as problems: ``sourceScript`` and
``checker`` name files inside the task's directory, ``mandatory`` is true or false.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import Problem
from ._cleanup import removes_host_dir, wheel_removes_host_dir
from ._component import COMPONENT_FILE, Component, ComponentType
from ._expr import ExpressionError, parse_expression
from ._hosts import LOCALHOST, HostConfig
from ._project import Project

__all__ = ["WHEEL_HOST_FIELDS", "task_field_problems", "wheel_notes"]

#: the fields of a ``remotehost.json`` entry OPEN-WHEEL accepts (``remotehostJsonSchema.js`` on
#: dev2025, plus W22's ``username`` and the hidden ``useWebAPI``)
WHEEL_HOST_FIELDS = frozenset(
    "id name host user username port keyFile path jobScheduler numJob queue useBulkjob "
    "useStepjob sharedHost sharedPath sharedWithLocalhost localSharedPath renewInterval "
    "renewDelay statusCheckInterval maxStatusCheckError execInterval readyTimeout "
    "keepaliveInterval rcfile prependCmd useGfarm JWTServerUser JWTServerURL useWebAPI".split()
)

_TASKLIKE = {ComponentType.TASK, ComponentType.STEPJOB_TASK, ComponentType.BULKJOB_TASK}
#: what WHEEL declares for a condition besides the components' env (``dispatcher.js``,
#: ``loopUtils.js``, ``executerManager.js``); ``WHEEL_PS_PARAM_<key>`` inside a study
_WHEEL_CONDITION_NAMES = frozenset(
    "WHEEL_CURRENT_INDEX WHEEL_PREV_INDEX WHEEL_NEXT_INDEX WHEEL_FOR_START WHEEL_FOR_END "
    "WHEEL_FOR_STEP WHEEL_LOOP_LEN WHEEL_FOREACH_LEN WHEEL_TASK_RT wheelTaskRT".split()
)
_CONDITION_KEYS = ("condition", "retryCondition")
_ESCAPED = set("<>&\"'")
_GLOB = set("*?[]{}")


def _file(c: Component) -> str:
    return f"{c.rel}/{COMPONENT_FILE}" if c.rel else COMPONENT_FILE


# ---------------------------------------------------------------------------- task fields
def task_field_problems(c: Component) -> list[Problem]:
    """``sourceScript``, ``checker`` and ``inputFiles[].mandatory`` of a task."""
    out: list[Problem] = []
    f = _file(c)
    for key in ("sourceScript", "checker"):
        value = c.data.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            out.append(Problem(f, key, "must be the name of a file in the task's directory"))
            continue
        target = os.path.normpath(os.path.join(c.directory, value))
        inside = not os.path.isabs(value) and (
            target == str(c.directory) or target.startswith(str(c.directory) + os.sep)
        )
        if not inside:
            out.append(
                Problem(
                    f,
                    key,
                    f"{value!r} is outside the task's directory; put the file in "
                    f"{c.rel}/ and name it relative to it",
                )
            )
        elif not Path(target).is_file():
            out.append(
                Problem(
                    f,
                    key,
                    f"{value!r} does not exist in {c.rel}/; create it or clear {key}",
                )
            )
    for i, inp in enumerate(c.data.get("inputFiles") or []):
        if isinstance(inp, dict) and "mandatory" in inp and not isinstance(inp["mandatory"], bool):
            out.append(
                Problem(
                    f,
                    f"inputFiles[{i}].mandatory",
                    f"is {json.dumps(inp['mandatory'])}; use true or false",
                )
            )
    return out


# ---------------------------------------------------------------------------- notes
def wheel_notes(project: Project, hosts: Mapping[str, HostConfig] | None = None) -> list[Problem]:
    """What WHEEL cannot run, or runs differently, in ``project`` (see the module's text)."""
    notes: list[Problem] = []
    used_hosts: set[str] = set()
    for c in project.components():
        if c.type in _TASKLIKE or c.type in (ComponentType.STEPJOB, ComponentType.STORAGE):
            used_hosts.add(c.host)
        if c.type == ComponentType.VIEWER:
            notes.extend(_viewer_notes(c))
        elif c.type == ComponentType.PARAMETER_STUDY:
            notes.extend(_study_notes(c))
        elif c.type == ComponentType.FOR:
            notes.extend(_for_notes(c))
        notes.extend(_condition_notes(c))
        if c.type in _TASKLIKE and c.host != LOCALHOST:
            notes.extend(_cleanup_notes(c))
        if c.type in _TASKLIKE and c.data.get("sourceScript") not in (None, ""):
            notes.append(
                Problem(
                    _file(c),
                    "sourceScript",
                    "WHEEL sources it only before submitting a job (useJobScheduler): it runs "
                    "this task without it"
                    if not c.use_job_scheduler
                    else "WHEEL sources it before submitting the job; sharin's batch jobs do "
                    "not source it yet",
                )
            )
    for name in sorted(used_hosts - {LOCALHOST}):
        cfg = (hosts or {}).get(name)
        if cfg is None:
            continue
        for key in sorted(set(cfg.raw) - WHEEL_HOST_FIELDS):
            notes.append(
                Problem(
                    "remotehost.json",
                    f"{name}.{key}",
                    f"is a sharin field; WHEEL's host editor refuses an entry with fields it "
                    f"does not know (remove {key!r} from the copy of remotehost.json WHEEL reads)",
                )
            )
    return notes


def _cleanup_notes(c: Component) -> Iterable[Problem]:
    ours, wheels = removes_host_dir(c), wheel_removes_host_dir(c)
    if ours == wheels:
        return
    said = {True: "removes", False: "keeps"}
    yield Problem(
        _file(c),
        "cleanupFlag",
        f"sharin {said[ours]} the task's working directory on its host after stage-out, WHEEL "
        f"{said[wheels]} it (WHEEL takes a parent's 0 only when the task's own workflow says "
        '"0" as a string, and a task\'s own 0 only as a number); write cleanupFlag 0 or 1 '
        "as a number on the task itself for both to do the same",
    )


def _condition_notes(c: Component) -> Iterable[Problem]:
    for key in _CONDITION_KEYS:
        text = c.data.get(key)
        if (
            not isinstance(text, str)
            or not text.strip()
            or os.path.isfile(c.directory / text.strip())
        ):
            continue
        try:
            expr = parse_expression(text.strip())
        except ExpressionError:
            continue  # validation reports it
        declared: set[str] = set()
        x: Component | None = c
        while x is not None:
            declared.update(x.env)
            x = x.parent
        unknown = sorted(
            n
            for n in expr.variables
            if n not in declared
            and n not in _WHEEL_CONDITION_NAMES
            and not n.startswith("WHEEL_PS_PARAM_")
        )
        if unknown:
            names = ", ".join(unknown)
            yield Problem(
                _file(c),
                key,
                f"names {names}, which WHEEL does not define for conditions (only the "
                "components' env and its loop, parameter and WHEEL_TASK_RT variables): a "
                "ReferenceError in WHEEL; set it in env or use a condition script",
            )


def _viewer_notes(c: Component) -> Iterable[Problem]:
    parent = c.parent
    if parent is None:
        return
    siblings = {x.id: x for x in parent.children}
    siblings[parent.id] = parent
    for i, inp in enumerate(c.input_files):
        for link in inp.src:
            producer = siblings.get(link.node)
            name = link.name
            if producer is None or set(name) & _GLOB:
                continue  # a glob delivers the files it matches: fine for WHEEL
            where = producer.directory / name.rstrip("/")
            gathered = producer.type == ComponentType.PARAMETER_STUDY and any(
                d.startswith(name.rstrip("/") + "/") for d in _gather_names(producer)
            )
            if not (name.endswith("/") or where.is_dir() or gathered):
                continue
            yield Problem(
                _file(c),
                f"inputFiles[{i}]",
                f"{name!r} from {producer.rel or 'the parent'} is a directory; WHEEL's viewer "
                "reads every input as a file and fails on a directory (EISDIR); connect the "
                f"image files instead (e.g. a glob {name.rstrip('/') + '/*.png'!r})",
            )


def _setting(c: Component) -> dict[str, Any] | None:
    path = c.directory / str(c.data.get("parameterFile") or "parameterSetting.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # validation reports a bad parameter file
    return data if isinstance(data, dict) else None


def _gather_names(c: Component) -> list[str]:
    """Where a study gathers files (``gather[].dstName``, its ``{{ }}`` left as they are)."""
    data = _setting(c) or {}
    rules = data.get("gather") or []
    return [str(r.get("dstName") or "") for r in rules if isinstance(r, dict)]


def _study_notes(c: Component) -> Iterable[Problem]:
    path = c.directory / str(c.data.get("parameterFile") or "parameterSetting.json")
    data = _setting(c)
    if data is None or not (data.get("targetFiles") or data.get("target_file")):
        return
    params = data.get("params") or data.get("target_param") or []
    for i, axis in enumerate(params if isinstance(params, list) else []):
        if not isinstance(axis, dict):
            continue
        values: Any = axis.get("list")
        if isinstance(values, str):
            values = [values]
        for v in values if isinstance(values, list) else []:
            if isinstance(v, str) and set(v) & _ESCAPED:
                yield Problem(
                    f"{c.rel}/{path.name}",
                    f"params[{i}].list",
                    f"value {v!r}: WHEEL HTML-escapes it in target files ({_escape(v)!r}), "
                    "sharin writes it as it is",
                )
                break


def _escape(v: str) -> str:
    return (
        v.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _for_notes(c: Component) -> Iterable[Problem]:
    for key in ("start", "end", "step"):
        value = c.data.get(key)
        if isinstance(value, bool) or value is None:
            continue
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            continue  # validation reports it
        if d.is_finite() and d != d.to_integral_value():
            yield Problem(
                _file(c),
                key,
                f"{value!r} is not a whole number; WHEEL's editor takes whole numbers only and "
                "WHEEL adds the step in floating point (trips and WHEEL_CURRENT_INDEX such as "
                "0.30000000000000004), sharin computes each index exactly",
            )
