"""What every field of every file sharin reads must hold, declared once per file type.

Each file type is a :mod:`msgspec` ``Struct`` below: ``cmp.wheel.json`` (one struct per
component type, sharing the fields of their kind), ``prj.wheel.json``, an entry of
``remotehost.json``, an entry of ``jobScheduler.json`` and ``server.json``
(``parameterSetting.json`` is checked field by field by its own parser). A file is checked with
:func:`check_object`, which returns one :class:`~sharin.errors.Problem` per wrong field, in the
user's words (``must be a whole number from 0 to 100 (or empty), not "abc"``), never msgspec's.
Fields not declared here are not looked at: sharin keeps them as they are.

The structs are only used to check: the JSON object stays the data sharin reads and writes, so
a load/save round trip keeps every field. This module imports msgspec; it is imported where
files are read, never at start-up.
"""

import functools
import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from ..errors import Problem
from ._component import MAX_RETRY
from ._jsonio import show_json

__all__ = [
    "MAX_RETRY",
    "HostEntry",
    "ProjectFile",
    "SchedulerEntry",
    "ServerFile",
    "check_field",
    "check_object",
    "check_project_file",
    "check_value",
    "component_schema",
    "convert",
    "present_fields",
    "describe",
    "show",
]

_M = msgspec.Meta
S = TypeVar("S", bound=msgspec.Struct)

# ------------------------------------------------------------------------------------ field kinds
#: a relative file name or glob: no part longer than a directory entry may be (255 bytes)
FileName = Annotated[
    str,
    _M(
        pattern=r"^[^/\x00]{0,255}(/[^/\x00]{0,255})*$",
        max_length=4096,
        description="a file name (each part at most 255 characters)"
        "|file names (each part at most 255 characters)",
    ),
]
#: a component name is a directory name
Name = Annotated[str, _M(max_length=255, description="a string of at most 255 characters")]
#: a whole number 0..100; WHEEL's forms may have written it as text ("3"), or left it empty
Retry = Annotated[
    Annotated[int, _M(ge=0, le=MAX_RETRY)]
    | Annotated[str, _M(pattern=r"^\s*(100|[1-9]?[0-9])?\s*$")]
    | None,
    _M(description=f"a whole number from 0 to {MAX_RETRY} (or empty)"),
]
Count = Annotated[
    Annotated[int, _M(ge=0)] | Annotated[str, _M(pattern=r"^\s*[0-9]*\s*$")] | None,
    _M(description="a whole number ≥ 0 (or empty)"),
]
#: in configuration files, read with strict=False: "3" is read as 3
ConfigCount = Annotated[int, _M(ge=0)] | Literal[""] | None
Number = int | float | None
Text = str | None
Flag = bool | None
Ids = list[str] | None
Globs = list[FileName] | str | None  #: OPEN-WHEEL writes a list, WHEEL 2022 "a,b"
EnvValue = str | int | float
#: 0 remove the host's working directory after stage-out, 1 keep it, 2 as the parent says;
#: WHEEL's forms write numbers, its code compares strings: both are read
CleanupFlag = Annotated[
    Literal[0, 1, 2, "0", "1", "2", ""] | None,
    _M(
        description="0 (remove the working directory on the host after stage-out), "
        "1 (keep it) or 2 (as the parent component says)"
    ),
]


class SrcLink(msgspec.Struct):
    srcNode: str
    srcName: FileName


class DstLink(msgspec.Struct):
    dstNode: str
    dstName: FileName


class InputFile(msgspec.Struct):
    name: FileName
    src: list[SrcLink] | None = None
    forwardTo: list[DstLink] | None = None


class OutputFile(msgspec.Struct):
    name: FileName
    dst: list[DstLink] | None = None
    origin: list[SrcLink] | None = None


# --------------------------------------------------------------------------------- cmp.wheel.json
class Base(msgspec.Struct):
    """Fields every component has."""

    ID: str | None = None
    name: Name | None = None
    type: str | None = None
    parent: str | None = None
    description: Text = None
    disable: Flag = None
    state: Text = None
    env: dict[str, EnvValue] | None = None
    subComponent: Flag = None


class Flow(Base):
    """Components joined by flow and file edges."""

    previous: Ids = None
    next: Ids = None
    inputFiles: list[InputFile] | None = None
    outputFiles: list[OutputFile] | None = None
    cleanupFlag: CleanupFlag = None


class Task(Flow):
    script: (
        Annotated[FileName, _M(description="the name of a script file in the directory")] | None
    ) = None
    host: Name | None = None
    useJobScheduler: Flag = None
    queue: Text = None
    submitOption: Text = None
    include: Globs = None
    exclude: Globs = None
    retry: Retry = None
    retryTimes: Retry = None  #: WHEEL 2022's name for retry
    retryCondition: Annotated[
        str | bool | None,
        _M(description="a script name or an expression, or true or false (or null)"),
    ] = None
    ignoreFailure: Flag = None


class StepjobTask(Task):
    stepnum: Count = None
    useDependency: Flag = None
    dependencyForm: Text = None


class BulkjobTask(Task):
    usePSSettingFile: Flag = None
    parameterFile: FileName | None = None
    startBulkNumber: Count = None
    endBulkNumber: Count = None
    manualFinishCondition: Flag = None
    condition: Text = None


class Container(Flow):
    descendants: Ids = None


class Condition(Flow):
    condition: Text = None


class If(Condition):
    pass


class Loop(Container):
    keep: Count = None


class For(Loop):
    start: Number = None
    end: Number = None
    step: Number = None


class Foreach(Loop):
    indexList: list[str | int | float] | None = None


class While(Loop):
    condition: Text = None


class ParameterStudy(Loop):
    parameterFile: FileName | None = None
    forceOverwrite: Flag = None
    deleteLoopInstance: Flag = None


class Stepjob(Container):
    host: Name | None = None
    useJobScheduler: Flag = None
    queue: Text = None
    submitOption: Text = None


class Source(Base):
    outputFiles: list[OutputFile] | None = None
    uploadOnDemand: Flag = None


class Viewer(Base):
    inputFiles: list[InputFile] | None = None


class Storage(Base):
    inputFiles: list[InputFile] | None = None
    outputFiles: list[OutputFile] | None = None
    host: Name | None = None
    storagePath: Annotated[str, _M(max_length=4096)] | None = None


_COMPONENTS: Final[Mapping[str, type[msgspec.Struct]]] = {
    "task": Task,
    "stepjobTask": StepjobTask,
    "bulkjobTask": BulkjobTask,
    "workflow": Container,
    "if": If,
    "break": Condition,
    "continue": Condition,
    "for": For,
    "foreach": Foreach,
    "while": While,
    "parameterStudy": ParameterStudy,
    "stepjob": Stepjob,
    "source": Source,
    "viewer": Viewer,
    "storage": Storage,
}


def component_schema(ctype: object) -> type[msgspec.Struct]:
    """The struct of a component type (the common fields for a type sharin does not know)."""
    return _COMPONENTS.get(ctype, Base) if isinstance(ctype, str) else Base


# --------------------------------------------------------------------------------- prj.wheel.json
class ProjectFile(msgspec.Struct):
    name: Name | None = None
    description: Text = None
    state: Text = None
    root: Text = None
    version: int | float | str | None = None
    ctime: Text = None
    mtime: Text = None
    componentPath: dict[str, str] | None = None
    exportInfo: dict[str, Any] | None = None


# -------------------------------------------------------------------------------- remotehost.json
class HostEntry(msgspec.Struct):
    """One entry of remotehost.json (WHEEL 2022 and OPEN-WHEEL, both generations)."""

    name: Annotated[
        str,
        _M(min_length=1, max_length=255, description="a label (what tasks name as their host)"),
    ]
    host: Text = None
    user: Text = None
    username: Text = None  #: WHEEL 2022
    port: Annotated[int, _M(ge=1, le=65535)] | Literal[""] | None = None
    path: Annotated[str, _M(max_length=4096)] | None = None
    keyFile: Text = None
    jobScheduler: Text = None
    numJob: ConfigCount = None
    #: OPEN-WHEEL 2025 writes a list, earlier versions one comma-separated string
    queue: list[str] | str | None = None
    statusCheckInterval: (
        Annotated[int, _M(ge=0)] | Annotated[float, _M(ge=0)] | Literal[""] | None
    ) = None
    maxStatusCheckError: ConfigCount = None
    useStepjob: Flag = None
    useBulkjob: Flag = None
    transport: Text = None  #: sharin's: "ssh" (the default) or "local"
    renewInterval: Annotated[int, _M(ge=0)] | Annotated[float, _M(ge=0)] | Literal[""] | None = None
    readyTimeout: Annotated[int, _M(ge=0)] | Literal[""] | None = None  #: milliseconds
    keepaliveInterval: Annotated[int, _M(ge=0)] | Literal[""] | None = None  #: milliseconds
    maxSessions: Annotated[int, _M(ge=1)] | Literal[""] | None = None  #: sharin's
    knownHostsFile: Text = None  #: sharin's: a known_hosts file instead of ~/.ssh/known_hosts
    sharedHost: Text = None  #: the label of another host that shares this one's files


# ------------------------------------------------------------------------------ jobScheduler.json
Command = str | list[str] | None  #: WHEEL 2022: a list of commands run one after the other
Codes = Annotated[
    list[int | str] | int | str | None,
    _M(description="a code (a whole number) or a list of codes"),
]


class SchedulerEntry(msgspec.Struct):
    """One scheduler of jobScheduler.json: WHEEL's keys and sharin's additions."""

    submit: Command = None
    delete: Command = msgspec.field(default=None, name="del")
    stat: Command = None
    statAfter: Command = None
    bulkstat: Command = None
    bulkstatAfter: Command = None
    queueOpt: Text = None
    statDelimiter: Text = None
    grpName: Text = None
    reJobID: Text = None
    reRunning: Text = None
    reFinishedState: Text = None
    reReturnCode: Text = None
    reJobStatusCode: Text = None
    reJobStatus: Text = None
    reExceededLimitError: Text = None
    reSubReturnCode: Text = None
    reSubJobStatusCode: Text = None
    acceptableRt: Codes = None
    exceededRtList: Codes = None
    acceptableJobStatus: Codes = None
    supportStepjob: Flag = None
    supportBulkjob: Flag = None
    stepjob: Flag = None  #: WHEEL 2022
    bulkjob: Flag = None  #: WHEEL 2022
    stepOption: Text = None
    stepJoinOption: Text = None
    bulkOption: Text = None
    stdoutFile: Text = None
    stderrFile: Text = None
    jobStatusMeaning: dict[str, str] | None = None


# ------------------------------------------------------------------------------------ server.json
class ServerFile(msgspec.Struct):
    numJobOnLocal: Annotated[int, _M(ge=1)] | Literal[""] | None = None
    numLocalJob: Annotated[int, _M(ge=1)] | Literal[""] | None = None  #: OPEN-WHEEL 2025


# ----------------------------------------------------------------------------------- checking
def check_project_file(kind: str, data: Mapping[str, Any], file: str) -> list[Problem]:
    """``prj.wheel.json`` (``kind`` "project") or a ``cmp.wheel.json`` (by its ``type``)."""
    schema = ProjectFile if kind == "project" else component_schema(data.get("type"))
    return check_object(data, schema, file)


def check_object(
    data: Mapping[str, Any],
    schema: type[msgspec.Struct],
    file: str,
    *,
    prefix: str = "",
    strict: bool = True,
) -> list[Problem]:
    """Every field of ``data`` that does not fit ``schema``, as problems of ``file``.

    ``prefix`` is put before field names (``fugaku.`` for an entry of a list). ``strict=False``
    (configuration files, which WHEEL 2022's forms wrote with numbers as strings) reads
    ``"22"`` as 22 and ``"true"`` as true.
    """
    try:
        msgspec.convert(data, schema, strict=strict)
        return []  # the usual case, in one call
    except msgspec.ValidationError:
        pass
    problems: list[Problem] = []
    for key, f in _fields(schema).items():
        if key not in data:
            if f.required:
                problems.append(
                    Problem(file, prefix + key, f"is missing; set it to {describe(f.type)}")
                )
            continue
        message = check_field(data[key], f.type, strict=strict)
        if message is not None:
            where, text = message
            problems.append(Problem(file, prefix + key + where, text))
    return problems


def convert(data: Mapping[str, Any], schema: type[S]) -> S:
    """``data`` as a ``schema`` struct (checked with ``strict=False`` before)."""
    return msgspec.convert(data, schema, strict=False)


@functools.cache
def _fields(tp: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """The fields of a struct type by their names in the file, read once (msgspec resolves
    the type annotations again at every ``structs.fields`` call: ~0.25 ms)."""
    return {f.encode_name: f for f in msgspec.structs.fields(tp)}


def present_fields(struct: msgspec.Struct, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``struct`` that ``data`` has, by their names in the file."""
    return {key: getattr(struct, f.name) for key, f in _fields(type(struct)).items() if key in data}


def check_value(ctype: str, key: str, value: Any, file: str) -> Problem | None:
    """The problem with setting field ``key`` of a component of type ``ctype`` to ``value``
    (None when it fits, or when sharin does not know the field: it is kept as given)."""
    f = _fields(component_schema(ctype)).get(key)
    if f is None:
        return None
    found = check_field(value, f.type)
    return None if found is None else Problem(file, key + found[0], found[1])


def check_field(value: Any, tp: Any, *, strict: bool = True) -> tuple[str, str] | None:
    """None when ``value`` fits type ``tp``, else (where below the field, what is wrong)."""
    try:
        msgspec.convert(value, tp, strict=strict)
        return None
    except msgspec.ValidationError as e:
        text = str(e)
    path = ""
    if " - at `$" in text:
        text, _, path = text.partition(" - at `$")
        path = path.rstrip("`")
    steps = _steps(path)
    sub_tp, sub_value, where = _walk(tp, value, steps)
    missing = re.match(r"Object missing required field `(.+)`", text)
    if missing:
        name = missing.group(1)
        return where, f"needs the field {json.dumps(name)}"
    if not steps or sub_tp is not None:
        return where, f"must be {describe(sub_tp if steps else tp)}, not {show(sub_value)}"
    return where, f"is not valid ({_words_of(text)}), found {show(sub_value)}"


def _steps(path: str) -> list[str | int | None]:
    """``.a[0][...]`` -> ["a", 0, None] (None: a value of an object, whose key is not told)."""
    out: list[str | int | None] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]", path):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(None)
    return out


def _walk(tp: Any, value: Any, steps: list[str | int | None]) -> tuple[Any, Any, str]:
    """Follow ``steps`` into ``value`` and its type: (type there or None, value there, where)."""
    where = ""
    for step in steps:
        tp = _pick(tp, value)
        if isinstance(step, int):
            where += f"[{step}]"
            value = value[step] if isinstance(value, list) and step < len(value) else None
            args = typing.get_args(tp)
            tp = args[0] if args and typing.get_origin(tp) is list else None
        elif step is None:  # a value of an object: find the first one that does not fit
            args = typing.get_args(tp)
            tp = args[1] if len(args) == 2 and typing.get_origin(tp) is dict else None
            bad = None
            if isinstance(value, dict):
                for k, v in value.items():
                    if tp is None or check_field(v, tp, strict=False) is not None:
                        bad = k
                        break
            where += f"[{json.dumps(bad, ensure_ascii=False)}]" if bad is not None else ""
            value = value.get(bad) if isinstance(value, dict) and bad is not None else None
        else:
            where += f".{step}"
            value = value.get(step) if isinstance(value, dict) else None
            tp = _field_type(tp, step)
        if tp is None:
            return None, value, where
    return tp, value, where


def _pick(tp: Any, value: Any) -> Any:
    """The member of a union ``tp`` that has the JSON kind of ``value`` (list, object ...)."""
    tp = _strip(tp)
    if _is_union(tp):
        for arg in typing.get_args(tp):
            a = _strip(arg)
            origin = typing.get_origin(a)
            if isinstance(value, list) and origin is list:
                return a
            if isinstance(value, dict) and (
                origin is dict or (isinstance(a, type) and issubclass(a, msgspec.Struct))
            ):
                return a
        return None
    return tp


def _field_type(tp: Any, name: str) -> Any:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        f = _fields(tp).get(name)
        return None if f is None else f.type
    return None


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


# ------------------------------------------------------------------------------------ wording
_SIMPLE: Final[Mapping[Any, tuple[str, str]]] = {
    int: ("a whole number", "whole numbers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    bool: ("true or false", "true or false"),
}


def describe(tp: Any, *, plural: bool = False) -> str:
    """A type in a user's words: ``a whole number from 0 to 100 (or empty)``."""
    if typing.get_origin(tp) is Annotated:
        inner, *extras = typing.get_args(tp)
        meta = next((m for m in extras if isinstance(m, msgspec.Meta)), None)
        if meta is not None and meta.description:
            one, _, many = meta.description.partition("|")
            return many if plural and many else one
        return _constrained(describe(inner, plural=plural), meta)
    if _is_union(tp):
        args = typing.get_args(tp)
        empty = [a for a in args if a is type(None) or a == Literal[""]]
        words = [describe(a, plural=plural) for a in args if a not in empty]
        if {int, float} <= {_strip(a) for a in args}:
            words = [w for w in words if w != "whole numbers"]
        words = [
            w
            for w in words
            if not (w.startswith("a whole number") and "a number" + w[14:] in words)
        ]
        text = " or ".join(dict.fromkeys(words))
        if empty:
            text += " (or empty)" if Literal[""] in empty else " (or null)"
        return text
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(json.dumps(v) for v in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return f"a list of {describe(item, plural=True)}"
    if typing.get_origin(tp) is dict:
        _, item = typing.get_args(tp)
        return f"an object whose values are {describe(item, plural=True)}"
    if tp in _SIMPLE:
        return _SIMPLE[tp][1 if plural else 0]
    if tp is Any:
        return "any value"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        needs = [key for key, f in _fields(tp).items() if f.required]
        head = "objects" if plural else "an object"
        return head + (" with " + " and ".join(f'"{n}"' for n in needs) if needs else "")
    return getattr(tp, "__name__", str(tp))


def _constrained(text: str, meta: msgspec.Meta | None) -> str:
    if meta is None:
        return text
    lo = meta.ge if meta.ge is not None else meta.gt
    hi = meta.le if meta.le is not None else meta.lt
    if lo is not None and hi is not None:
        return f"{text} from {lo} to {hi}"
    if lo is not None:
        return f"{text} {'≥' if meta.ge is not None else '>'} {lo}"
    if hi is not None:
        return f"{text} {'≤' if meta.le is not None else '<'} {hi}"
    if meta.min_length and meta.max_length:
        return f"{text} of {meta.min_length} to {meta.max_length} characters"
    if meta.max_length is not None:
        return f"{text} of at most {meta.max_length} characters"
    if meta.min_length:
        return f"a non-empty {text.removeprefix('a ')}"
    return text


def _words_of(text: str) -> str:
    """What msgspec said, without its type syntax (a fall-back that should not be needed)."""
    for word, user in (("null", "null"), ("array", "a list"), ("object", "an object")):
        text = text.replace(f"`{word}`", user)
    return text.replace("`", "")


show = show_json
