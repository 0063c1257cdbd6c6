"""Components: a thin typed view over WHEEL's ``cmp.wheel.json`` that keeps every field it holds."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "COMPONENT_FILE",
    "CONTAINER_TYPES",
    "Component",
    "ComponentType",
    "FileLink",
    "InputFile",
    "OutputFile",
    "PROJECT_FILE",
    "ROOT_PARENT",
    "RUN_FIELDS",
    "STATUS_FILE",
    "State",
    "is_valid_name",
    "new_id",
]

PROJECT_FILE = "prj.wheel.json"
COMPONENT_FILE = "cmp.wheel.json"
STATUS_FILE = "status.wheel.txt"
ROOT_PARENT = "this is root"
PROJECT_SUFFIX = ".wheel"

#: fields of ``cmp.wheel.json`` and ``prj.wheel.json`` that runs write (sharin's state mirror,
#: WHEEL's dispatcher and executer), besides ``state``: not part of what a component is, and
#: taken back by ``clean``
RUN_FIELDS = frozenset(
    {
        "numTotal",
        "numFinished",
        "numFailed",
        "currentIndex",
        "prevIndex",
        "initialized",
        "restartChecked",
        "restarting",
        "childLoopRunning",
        "handler",
        "doCleanup",
        "sbsID",
        "hasFaild",
        "ancestorsName",
        "ancestorsType",
        "jobStatus",
        "parentType",
        "workingDir",
        "dispatchedTime",
        "preparedTime",
        "jobSubmittedTime",
        "jobStartTime",
        "jobEndTime",
        "startTime",
        "endTime",
        "rt",
        "failedTasks",
        "readOnly",
        "originalName",
        "instanceDirSeparator",
    }
)

_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


def script_file_problem(name: str) -> str | None:
    """What is wrong with ``name`` as the file a task's script is written to (None: nothing):
    it must be a plain file name in the component's directory, and not one of WHEEL's own."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        return f"{name!r} must be a file name in the component's directory (no '/'), e.g. run.sh"
    if name in (COMPONENT_FILE, STATUS_FILE):
        return f"{name!r} is WHEEL's own file; choose another, e.g. run.sh"
    return None


def is_valid_name(name: object) -> bool:
    """WHEEL's rule for component names (they are directory names): ``[A-Za-z0-9_-]+``."""
    return isinstance(name, str) and bool(_NAME_RE.match(name))


def new_id() -> str:
    """A new component ID in WHEEL's form (a version-1 UUID)."""
    return str(uuid.uuid1())


class ComponentType(enum.StrEnum):
    """Every component type WHEEL and OPEN-WHEEL write in ``cmp.wheel.json``."""

    TASK = "task"
    WORKFLOW = "workflow"
    IF = "if"
    FOR = "for"
    WHILE = "while"
    FOREACH = "foreach"
    PARAMETER_STUDY = "parameterStudy"
    SOURCE = "source"
    VIEWER = "viewer"
    STORAGE = "storage"
    STEPJOB = "stepjob"
    STEPJOB_TASK = "stepjobTask"
    BULKJOB_TASK = "bulkjobTask"
    HPCISS = "hpciss"
    HPCISSTAR = "hpcisstar"
    BREAK = "break"
    CONTINUE = "continue"


CONTAINER_TYPES = frozenset(
    {
        ComponentType.WORKFLOW,
        ComponentType.FOR,
        ComponentType.WHILE,
        ComponentType.FOREACH,
        ComponentType.PARAMETER_STUDY,
        ComponentType.STEPJOB,
    }
)


class State(enum.StrEnum):
    """Component and task states, with WHEEL's spelling where WHEEL has the state."""

    NOT_STARTED = "not-started"
    STAGE_IN = "stage-in"
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    STAGE_OUT = "stage-out"
    FINISHED = "finished"
    FAILED = "failed"
    UNKNOWN = "unknown"
    STOPPED = "stopped"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        """True for states a task does not leave without a new run."""
        return self in _FINAL


_FINAL = frozenset({State.FINISHED, State.FAILED, State.UNKNOWN, State.STOPPED, State.SKIPPED})


@dataclass(frozen=True)
class FileLink:
    """One end of a file edge: a component ID and a file name (or glob) in it."""

    node: str
    name: str


@dataclass(frozen=True)
class InputFile:
    name: str
    src: tuple[FileLink, ...]
    forward_to: tuple[FileLink, ...] = ()


@dataclass(frozen=True)
class OutputFile:
    name: str
    dst: tuple[FileLink, ...]
    origin: tuple[FileLink, ...] = ()


def _links(items: Any, node_key: str, name_key: str) -> tuple[FileLink, ...]:
    out = []
    for item in _list(items):
        if isinstance(item, dict):
            out.append(FileLink(_str(item.get(node_key)), _str(item.get(name_key))))
    return tuple(out)


def _str(value: Any) -> str:
    """A string field as text; anything else (a list, an object, null) reads as empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _list(value: Any) -> list[Any]:
    """A list field; anything that is not a list reads as empty."""
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [x for x in _list(value) if isinstance(x, str)]


def _count(value: Any, limit: int) -> int | None:
    """A whole number 0..limit, or None when the field holds anything else."""
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None


#: the most re-executions of a task (``retry``); larger values are a validation problem
MAX_RETRY = 100


@dataclass(eq=False)
class Component:
    """A component as read from its ``cmp.wheel.json``.

    ``data`` is the JSON object exactly as on disk; typed properties read from it and setters
    write into it, so fields sharin does not know survive a load/save round trip.
    """

    data: dict[str, Any]
    directory: Path
    rel: str = ""
    parent: Component | None = None
    children: list[Component] = field(default_factory=list)

    @property
    def file(self) -> Path:
        return self.directory / COMPONENT_FILE

    @property
    def id(self) -> str:
        return _str(self.data.get("ID"))

    @property
    def name(self) -> str:
        return _str(self.data.get("name"))

    @property
    def type(self) -> str:
        return _str(self.data.get("type"))

    @property
    def is_container(self) -> bool:
        return self.type in CONTAINER_TYPES

    @property
    def disabled(self) -> bool:
        return bool(self.data.get("disable"))

    @property
    def previous(self) -> list[str]:
        return _strings(self.data.get("previous"))

    @property
    def next(self) -> list[str]:
        return _strings(self.data.get("next"))

    @property
    def else_(self) -> list[str]:
        return _strings(self.data.get("else"))

    @property
    def script(self) -> str | None:
        return _str(self.data.get("script")) or None

    @property
    def host(self) -> str:
        return _str(self.data.get("host")) or "localhost"

    @property
    def use_job_scheduler(self) -> bool:
        return bool(self.data.get("useJobScheduler"))

    @property
    def queue(self) -> str | None:
        return _str(self.data.get("queue")) or None

    @property
    def submit_option(self) -> str | None:
        return _str(self.data.get("submitOption")) or None

    @property
    def retry(self) -> int:
        """Number of re-executions after a failure (WHEEL's ``retry``; W22 wrote ``retryTimes``)."""
        value = self.data.get("retry")
        if value is None or value == "":
            value = self.data.get("retryTimes")
        return _count(value, MAX_RETRY) or 0

    @property
    def retry_condition(self) -> str | None:
        c = self.data.get("retryCondition")
        if isinstance(c, bool):
            return "true" if c else "false"  # JSON's words: an expression that is always so
        return _str(c) or None

    @property
    def ignore_failure(self) -> bool:
        return bool(self.data.get("ignoreFailure"))

    @property
    def env(self) -> dict[str, str]:
        env = self.data.get("env")
        if not isinstance(env, dict):
            return {}
        return {str(k): _str(v) for k, v in env.items() if isinstance(v, str | int | float)}

    @property
    def include(self) -> list[str]:
        return _glob_list(self.data.get("include"))

    @property
    def exclude(self) -> list[str]:
        return _glob_list(self.data.get("exclude"))

    @property
    def state(self) -> str:
        return _str(self.data.get("state")) or State.NOT_STARTED.value

    @property
    def input_files(self) -> list[InputFile]:
        out = []
        for f in _list(self.data.get("inputFiles")):
            if isinstance(f, dict):
                out.append(
                    InputFile(
                        _str(f.get("name")),
                        _links(f.get("src"), "srcNode", "srcName"),
                        _links(f.get("forwardTo"), "dstNode", "dstName"),
                    )
                )
        return out

    @property
    def output_files(self) -> list[OutputFile]:
        out = []
        for f in _list(self.data.get("outputFiles")):
            if isinstance(f, dict):
                out.append(
                    OutputFile(
                        _str(f.get("name")),
                        _links(f.get("dst"), "dstNode", "dstName"),
                        _links(f.get("origin"), "srcNode", "srcName"),
                    )
                )
        return out

    def walk(self) -> list[Component]:
        """This component and all below it, parents before children."""
        out: list[Component] = []
        stack = [self]
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(reversed(c.children))
        return out

    def child_named(self, name: str) -> Component | None:
        for c in self.children:
            if c.name == name:
                return c
        return None

    def __repr__(self) -> str:
        return f"Component({self.type} {self.rel or '.'!s})"


def _glob_list(value: Any) -> list[str]:
    """include/exclude: OPEN-WHEEL stores an array, W22 a comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [v for v in _list(value) if isinstance(v, str) and v]


def step_order(stepjob: Component) -> list[Component]:
    """The steps of a stepjob in the order of their flow edges (WHEEL's ``stepnum`` order).

    A step comes after the steps it has flow edges from; steps not ordered by edges keep the
    order of their ``stepnum`` (then their name).
    """
    steps = list(stepjob.children)
    ids = {s.id for s in steps}

    def rank(s: Component) -> tuple[int, str]:
        n = s.data.get("stepnum")
        return (n if isinstance(n, int) and not isinstance(n, bool) else 1 << 30, s.name)

    waiting = {s.id: len(set(s.previous) & ids) for s in steps}
    by_id = {s.id: s for s in steps}
    ready = sorted((s for s in steps if waiting[s.id] == 0), key=rank)
    order: list[Component] = []
    while ready:
        s = ready.pop(0)
        order.append(s)
        for n in s.next:
            if n in waiting:
                waiting[n] -= 1
                if waiting[n] == 0:
                    ready.append(by_id[n])
                    ready.sort(key=rank)
    order += sorted((s for s in steps if s not in order), key=rank)  # a cycle: validation says so
    return order


def default_component(ctype: str, name: str, parent_id: str) -> dict[str, Any]:
    """The JSON WHEEL writes for a new component of this type."""
    data: dict[str, Any] = {
        "type": ctype,
        "name": name,
        "description": None,
        "parent": parent_id,
        "ID": new_id(),
        "pos": {"x": 0, "y": 0},
        "state": State.NOT_STARTED.value,
        "disable": False,
        "env": {},
    }
    if ctype not in (ComponentType.SOURCE, ComponentType.VIEWER, ComponentType.STORAGE):
        data.update(previous=[], next=[], inputFiles=[], outputFiles=[], cleanupFlag=2)
    if ctype in (ComponentType.TASK, ComponentType.STEPJOB_TASK, ComponentType.BULKJOB_TASK):
        data.update(
            script=None,
            host="localhost",
            useJobScheduler=False,
            queue=None,
            submitOption=None,
            include=[],
            exclude=[],
            retry=0,
            retryCondition=None,
            ignoreFailure=False,
        )
    if ctype in CONTAINER_TYPES:
        data["descendants"] = []
    if ctype == ComponentType.SOURCE:
        data.update(outputFiles=[{"name": "", "dst": []}], uploadOnDemand=False)
    if ctype == ComponentType.VIEWER:
        data.update(inputFiles=[])
    if ctype in (
        ComponentType.IF,
        ComponentType.WHILE,
        ComponentType.BREAK,
        ComponentType.CONTINUE,
    ):
        data["condition"] = None
    if ctype == ComponentType.IF:
        data["else"] = []
    if ctype == ComponentType.FOR:
        data.update(start=None, end=None, step=None, keep=None)
    if ctype == ComponentType.FOREACH:
        data.update(indexList=[], keep=None)
    if ctype == ComponentType.WHILE:
        data["keep"] = None
    if ctype == ComponentType.PARAMETER_STUDY:
        data.update(
            parameterFile="parameterSetting.json", forceOverwrite=False, deleteLoopInstance=False
        )
    if ctype == ComponentType.STEPJOB:
        data.update(host="localhost", useJobScheduler=True, queue=None, submitOption=None)
    if ctype == ComponentType.STEPJOB_TASK:
        data.update(useJobScheduler=True, stepnum=0, useDependency=False, dependencyForm=None)
    if ctype == ComponentType.BULKJOB_TASK:
        data.update(
            useJobScheduler=True,
            usePSSettingFile=True,
            parameterFile=None,
            startBulkNumber=None,
            endBulkNumber=None,
            manualFinishCondition=False,
            condition=None,
        )
    return data
