"""The Python API. The CLI is a thin layer over these functions; a web server can use the same.

Build a project in code, run it and look at the result::

    import sharin

    p = sharin.new_project("demo.wheel")
    a = sharin.add_task(p, "hello", "echo hello > out.txt", outputs=["out.txt"])
    b = sharin.add_task(p, "shout", "tr a-z A-Z < in.txt")
    sharin.connect_files(p, a, "out.txt", b, "in.txt")
    result = sharin.run(p)          # or: await sharin.run_async(p)
    assert result.ok
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import model
from ..engine import (
    SUPPORTED_TYPES,
    Engine,
    Event,
    EventBus,
    ExecutorProvider,
    JobHandle,
    JobStatus,
    Journal,
    PlannedStep,
    RunOptions,
    RunRecord,
    RunResult,
    TaskRecord,
    install_signal_handlers,
    sharin_dir,
    viewer_files,
)
from ..engine import plan as _plan
from ..errors import BusyError, ExecutorError, Problem, ProjectError, RunError
from ..executors import (
    ExecutorRegistry,
    SchedulerDefinition,
    load_schedulers,
    step_and_bulk_hosts,
)
from ..model import (
    COMPONENT_FILE,
    PARAMETER_FILE,
    STATUS_FILE,
    Component,
    HostConfig,
    Project,
    check,
    git,
    load_hosts,
    local_job_limit,
)

__all__ = [
    "ProjectStatus",
    "Removal",
    "add_component",
    "add_task",
    "clean",
    "connect",
    "connect_files",
    "copy_project",
    "disconnect",
    "disconnect_files",
    "editing",
    "engine_pid",
    "export_project",
    "import_project",
    "log_paths",
    "new_project",
    "open_project",
    "plan",
    "remove_component",
    "removal_preview",
    "revert",
    "run",
    "run_async",
    "runs",
    "save",
    "set_property",
    "status",
    "unknown_key",
    "stop",
    "validate",
    "viewer_images",
]


ProjectRef = Project | str | os.PathLike[str]


def _project(p: ProjectRef) -> Project:
    return p if isinstance(p, Project) else Project.open(Path(p))


def _component(p: Project, c: Component | str) -> Component:
    return c if isinstance(c, Component) else p.component(c)


@contextlib.contextmanager
def editing(project: ProjectRef) -> Iterator[Project]:
    """Open the project for an edit: refused while an engine runs it (:class:`BusyError`), and
    no run can start until the edit is done. A path is read only once the lock is held."""
    root = project.root if isinstance(project, Project) else model.find_project_root(Path(project))
    with model.edit_lock(root):
        yield _project(project)


# ---------------------------------------------------------------------- building
def new_project(path: str | os.PathLike[str], description: str = "") -> Project:
    """Create an empty project (a git repository) at ``path`` (``.wheel`` is appended if missing)."""
    return Project.create(Path(path), description=description)


def open_project(path: str | os.PathLike[str]) -> Project:
    """Open a project written by sharin or by WHEEL."""
    return Project.open(Path(path))


def copy_project(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Project:
    """Copy a project (e.g. a shipped example) and make the copy a repository of its own."""
    return Project.copy(Path(src), Path(dst))


def export_project(
    project: ProjectRef,
    dest: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    mail: str | None = None,
    memo: str | None = None,
) -> Path:
    """Write the project's last save as an archive WHEEL can import (``WHEEL_project_<name>.tgz``)."""
    p = _project(project)
    return model.export_project(
        p.root, Path(dest) if dest is not None else None, name=name, mail=mail, memo=memo
    )


def import_project(
    source: str | os.PathLike[str],
    parent: str | os.PathLike[str] = ".",
    *,
    host_map: Mapping[str, str] | None = None,
    ask_host: Callable[[str, list[str]], str] | None = None,
    keep_state: bool = False,
) -> Project:
    """Import a WHEEL/sharin archive (``.tgz``) or project directory into ``parent``.

    Host labels this machine does not know must be mapped (``host_map`` or ``ask_host``).
    """
    root = model.import_project(
        Path(source),
        Path(parent),
        known_hosts=load_hosts().keys(),
        host_map=host_map,
        ask_host=ask_host,
        keep_state=keep_state,
    )
    return Project.open(root)


def add_component(
    project: ProjectRef,
    ctype: str,
    name: str,
    *,
    parent: Component | str | None = None,
    **props: Any,
) -> Component:
    with editing(project) as p:
        par = _component(p, parent) if parent is not None else None
        return p.add_component(ctype, name, par, **props)


#: the component types that run a script of their own
SCRIPT_TYPES = ("task", "stepjobTask", "bulkjobTask")


def add_task(
    project: ProjectRef,
    name: str,
    script_text: str | None = None,
    *,
    script: str = "run.sh",
    parent: Component | str | None = None,
    outputs: Iterable[str] = (),
    ctype: str = "task",
    **props: Any,
) -> Component:
    """Add a task; ``script_text`` (a shell script body) is written to ``script`` in its directory.

    ``ctype`` may also be ``stepjobTask`` or ``bulkjobTask``, the other components with a script.
    """
    if ctype not in SCRIPT_TYPES:
        raise ProjectError(f"{ctype!r} has no script; use one of {', '.join(SCRIPT_TYPES)}")
    with editing(project) as p:
        c = add_component(p, ctype, name, parent=parent, script=script, **props)
        if script_text is not None:
            text = script_text if script_text.startswith("#!") else "#!/bin/sh\n" + script_text
            path = c.directory / script
            path.write_text(text if text.endswith("\n") else text + "\n")
            path.chmod(0o755)
        outs = list(outputs)
        if outs:
            c.data["outputFiles"] = [{"name": o, "dst": []} for o in outs]
            p.write_component(c)
        return c


def connect(
    project: ProjectRef, src: Component | str, dst: Component | str, *, else_: bool = False
) -> None:
    """A flow edge: ``dst`` starts after ``src`` finished (components by path, name or ID)."""
    with editing(project) as p:
        p.connect(_component(p, src), _component(p, dst), else_=else_)


def disconnect(
    project: ProjectRef, src: Component | str, dst: Component | str, *, else_: bool = False
) -> None:
    """Remove the flow edge ``src`` → ``dst`` (with ``else_``, an if's else edge)."""
    with editing(project) as p:
        p.disconnect(_component(p, src), _component(p, dst), else_=else_)


def connect_files(
    project: ProjectRef,
    src: Component | str,
    src_name: str,
    dst: Component | str,
    dst_name: str,
) -> None:
    """A file edge: ``src``'s output ``src_name`` reaches ``dst`` as ``dst_name`` (and orders them)."""
    with editing(project) as p:
        p.connect_file(_component(p, src), src_name, _component(p, dst), dst_name)


def disconnect_files(
    project: ProjectRef,
    src: Component | str,
    src_name: str,
    dst: Component | str,
    dst_name: str,
) -> None:
    """Remove the file edge from ``src``'s ``src_name`` to ``dst``'s ``dst_name``."""
    with editing(project) as p:
        p.disconnect_file(_component(p, src), src_name, _component(p, dst), dst_name)


def set_property(project: ProjectRef, component: Component | str, key: str, value: Any) -> None:
    """Set one field of a component's ``cmp.wheel.json`` (``name`` renames it)."""
    with editing(project) as p:
        p.set_property(_component(p, component), key, value)


def unknown_key(project: ProjectRef, component: Component | str, key: str) -> str | None:
    """A warning when WHEEL's component of that type has no field ``key``; else None."""
    p = _project(project)
    c = _component(p, component)
    known = model.known_keys(c.type)
    if not known or key in known:
        return None
    return f"{c.rel}: a {c.type} in WHEEL has no field {key!r} (set anyway; check the spelling)"


@dataclass(frozen=True)
class Removal:
    """What removing a component deletes: its user's files, and those of them never saved."""

    component: str
    files: list[str]  #: relative to the project; WHEEL's own files are not listed
    unsaved: list[str]  #: of ``files``, those `revert` cannot bring back
    saved: bool  #: the last save holds the component: `revert` brings it back


_EMPTY_PS = {"version": 2, "targetFiles": [], "params": [], "scatter": [], "gather": []}


def removal_preview(project: ProjectRef, component: Component | str) -> Removal:
    """The user's files that removing ``component`` would delete (nothing is changed)."""
    p = _project(project)
    c = _component(p, component)
    if c.parent is None:
        raise ProjectError("the root workflow cannot be removed; remove the project directory")
    files: list[str] = []
    for d, dirs, names in os.walk(c.directory):
        dirs.sort()
        for n in sorted(names):
            path = Path(d) / n
            if n in (COMPONENT_FILE, STATUS_FILE) or (n == PARAMETER_FILE and _empty_ps(path)):
                continue
            files.append(str(path.relative_to(p.root)))
        for n in dirs:  # links to directories are files to the user too
            if (Path(d) / n).is_symlink():
                files.append(str((Path(d) / n).relative_to(p.root)))
    saved = False
    if git.is_repo(p.root):
        changed = git.unsaved(p.root, c.rel)
        unsaved = [f for f in files if f in changed]
        saved = changed.get(f"{c.rel}/{COMPONENT_FILE}", True)
    else:
        unsaved = list(files)
    return Removal(c.rel, files, unsaved, saved)


def _empty_ps(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()) == _EMPTY_PS)
    except (OSError, ValueError):
        return False


def remove_component(
    project: ProjectRef, component: Component | str, *, force: bool = False
) -> Removal:
    """Remove a component, its directory and its edges.

    A component holding files of the user's (scripts, inputs, outputs) is removed only with
    ``force=True``; :func:`removal_preview` lists them first. ``revert`` brings back what the
    last save holds.
    """
    with editing(project) as p:
        c = _component(p, component)
        removal = removal_preview(p, c)
        if removal.files and not force:
            shown = ", ".join(removal.files[:5]) + (" …" if len(removal.files) > 5 else "")
            raise ProjectError(
                f"{c.rel} holds {len(removal.files)} file(s) of yours ({shown}); "
                "confirm with `--yes` (force=True) to remove it"
            )
        p.remove_component(c)
        return removal


# ---------------------------------------------------------------------- checking
def validate(project: ProjectRef) -> list[Problem]:
    """Every problem in the project; empty when it can run."""
    p = _project(project)
    hosts = load_hosts()
    return _check(p, hosts, load_schedulers() if hosts else {})


def _check(
    p: Project, hosts: Mapping[str, HostConfig], schedulers: Mapping[str, SchedulerDefinition]
) -> list[Problem]:
    step_hosts, bulk_hosts = step_and_bulk_hosts(hosts, schedulers)
    problems = check(
        p,
        hosts=hosts.keys(),
        supported_types=SUPPORTED_TYPES,
        step_hosts=step_hosts,
        bulk_hosts=bulk_hosts,
    )
    return problems + _placement_problems(p, hosts, schedulers, problems)


def _placement_problems(
    p: Project,
    hosts: Mapping[str, HostConfig],
    schedulers: Mapping[str, SchedulerDefinition],
    found: list[Problem],
) -> list[Problem]:
    """Components whose host the executors cannot serve (no scheduler, no transport …)."""
    registry = ExecutorRegistry(hosts, schedulers=schedulers)
    seen = {(x.file, x.field) for x in found}
    out: list[Problem] = []
    for c in p.components():
        if c.type not in ("task", "bulkjobTask", "stepjob") or c.host not in hosts:
            continue
        use_job_scheduler = c.use_job_scheduler or c.type != "task"
        file = f"{c.rel}/{COMPONENT_FILE}"
        if (file, "host") in seen:
            continue
        try:
            registry.executor_for(c.host, use_job_scheduler)
        except ExecutorError as e:
            out.append(Problem(file, "host", str(e)))
    return out


# ---------------------------------------------------------------------- running
async def run_async(
    project: ProjectRef,
    *,
    options: RunOptions | None = None,
    on_event: Callable[[Event], None] | None = None,
    executors: ExecutorProvider | None = None,
    handle_signals: bool = False,
) -> RunResult:
    """Validate and run (or resume) a project; returns when the run ends."""
    p = _project(project)
    from ..errors import ValidationError

    hosts = load_hosts()
    schedulers = load_schedulers() if hosts else {}  # a local-only run reads none
    problems = _check(p, hosts, schedulers)
    if problems:
        raise ValidationError(problems)
    opts = options or RunOptions()
    if opts.max_local is None:
        opts.max_local = local_job_limit()
    provider = executors or ExecutorRegistry(hosts, max_local=opts.max_local, schedulers=schedulers)
    bus = EventBus()
    if on_event is not None:
        bus.subscribe(on_event)
    engine = Engine(p, provider, options=opts, events=bus)
    if handle_signals:
        install_signal_handlers(engine)
    try:
        return await engine.run()
    finally:
        await provider.close()


def run(project: ProjectRef, **kwargs: Any) -> RunResult:
    """Blocking form of :func:`run_async`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RunError(
            "sharin.run() cannot be called while an event loop is running here (as in "
            "Jupyter or an async function); use `await sharin.run_async(...)` instead"
        )
    return asyncio.run(run_async(project, **kwargs))


def plan(project: ProjectRef, *, restart: bool = False) -> list[PlannedStep]:
    """What :func:`run` would run and why (a dry run): one :class:`~sharin.engine.PlannedStep`
    per component, ``reason`` None for those that would be reused. Runs nothing and changes
    no file (the journal is only read)."""
    p = _project(project)
    path = sharin_dir(p.root) / "journal.sqlite"
    journal = Journal.open_readonly(path) if path.exists() else None
    try:
        return _plan(p, journal, restart=restart)
    finally:
        if journal is not None:
            journal.close()


# ---------------------------------------------------------------------- watching
@dataclass(frozen=True)
class ProjectStatus:
    project: str
    state: str  #: the project's state (prj.wheel.json)
    engine_pid: int | None  #: the engine running it now, if any
    run: RunRecord | None
    tasks: list[TaskRecord]

    @property
    def interrupted(self) -> bool:
        """The last run did not end and no engine runs it: ``sharin run`` resumes it."""
        return self.run is not None and self.run.state == "running" and self.engine_pid is None


def _journal(p: Project) -> Journal | None:
    path = sharin_dir(p.root) / "journal.sqlite"
    return Journal(path) if path.exists() else None


def engine_pid(project: ProjectRef) -> int | None:
    """The pid of the engine running the project now, or None."""
    import fcntl

    p = _project(project)
    d = sharin_dir(p.root)
    lock = d / "engine.lock"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            return int((d / "engine.pid").read_text().strip())
        except (OSError, ValueError):
            return -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def status(project: ProjectRef, run_id: int | None = None) -> ProjectStatus:
    p = _project(project)
    j = _journal(p)
    rec: RunRecord | None = None
    tasks: list[TaskRecord] = []
    if j is not None:
        try:
            rec = j.run(run_id) if run_id is not None else j.last_run()
            if run_id is not None and rec is None:
                raise ProjectError(f"{p.root}: there is no run {run_id}; `sharin runs` lists them")
            if rec is not None:
                tasks = j.task_list(rec.id)
        finally:
            j.close()
    return ProjectStatus(p.name, p.state, engine_pid(p), rec, tasks)


def job_states(project: ProjectRef, run_id: int | None = None) -> dict[str, JobStatus]:
    """Ask the executors about every task of a run that has a process or job that may still run.

    Handles are grouped by host: one status query per host covers all its jobs (for a batch
    scheduler, one ``stat`` and, for the jobs that left the queue, one ``statAfter``).
    """
    s = status(project, run_id)
    live = [t for t in s.tasks if t.handle and t.state in ("running", "queued", "unknown")]
    if not live:
        return {}

    async def ask() -> dict[str, JobStatus]:
        registry = ExecutorRegistry(load_hosts(), schedulers=load_schedulers())
        groups: dict[tuple[str, str], list[tuple[str, JobHandle]]] = {}
        for t in live:
            h = JobHandle.from_json(t.handle or "")
            groups.setdefault((h.executor, h.host), []).append((t.key, h))
        answer: dict[str, JobStatus] = {}
        try:
            for (kind, host), items in groups.items():
                try:
                    ex = registry.executor_for(host, kind == "batch")
                    found = await ex.status([h for _, h in items])
                except ExecutorError as e:
                    found = {h: JobStatus("unknown", str(e)) for _, h in items}
                for key, h in items:
                    answer[key] = found.get(h, JobStatus("unknown", "no answer"))
        finally:
            await registry.close()
        return answer

    return asyncio.run(ask())


def runs(project: ProjectRef) -> list[RunRecord]:
    p = _project(project)
    j = _journal(p)
    if j is None:
        return []
    try:
        return j.runs()
    finally:
        j.close()


def viewer_images(project: ProjectRef, component: Component | str) -> list[Path]:
    """The images a viewer component collected in its directory (links followed), sorted."""
    p = _project(project)
    c = _component(p, component)
    if c.type != "viewer":
        raise ProjectError(f"{c.rel} is a {c.type}, not a viewer")
    return viewer_files(c.directory)


def log_paths(
    project: ProjectRef,
    component: Component | str,
    run_id: int | None = None,
    *,
    pending: bool = False,
) -> tuple[Path, Path]:
    """stdout and stderr files of a task in a run (default: the last run).

    ``component`` is a component (path, name or ID) or the path of one of its loop trips or
    parameter-study instances (``loop_1/task``). A component that ran only inside trips is an
    error that lists them; so are a component that does not exist and one that has not run
    (with ``pending``, one that has not run yet gives the files it will write, to follow).
    """
    p = _project(project)
    j = _journal(p)
    try:
        rec = None if j is None else (j.run(run_id) if run_id is not None else j.last_run())
        if rec is None:
            if j is not None and run_id is not None and j.runs():
                raise ProjectError(f"{p.root}: there is no run {run_id}; `sharin runs` lists them")
            _log_component(p, component, {})  # no such component, or:
            raise ProjectError(f"{p.root}: the project has not been run yet; `sharin run` it first")
        tasks = j.tasks(rec.id) if j is not None else {}
        c = _log_component(p, component, tasks)
        key = c if isinstance(c, str) else _log_key(p, c, rec.id, tasks, pending)
    finally:
        if j is not None:
            j.close()
    stem = key.replace("%", "%25").replace("/", "%2F")
    d = sharin_dir(p.root) / "runs" / str(rec.id)
    return d / f"{stem}.out", d / f"{stem}.err"


_REPEATING = ("for", "while", "foreach", "parameterStudy")


def _log_component(
    p: Project, component: Component | str, tasks: Mapping[str, TaskRecord]
) -> Component | str:
    """The component named, or the journal key of a trip or instance path."""
    if not isinstance(component, str):
        return component
    ref = component.strip().strip("/")
    if ref in tasks:
        return ref  # a task, or a trip or instance path
    try:
        return p.component(ref)
    except ProjectError:
        known = ", ".join(x.rel for x in p.components()) or "none"
        raise ProjectError(
            f"no such component or trip {ref!r} in project {p.name} (components: {known})"
        ) from None


def _log_key(
    p: Project, c: Component, run_id: int, tasks: Mapping[str, TaskRecord], pending: bool
) -> str:
    if c.rel in tasks:
        return c.rel
    trips = sorted((k for k in tasks if _is_trip_of(k, c)), key=_natural)
    if trips:
        shown = ", ".join(trips[:10]) + (f" and {len(trips) - 10} more" if len(trips) > 10 else "")
        raise ProjectError(
            f"{c.rel} runs inside a loop or parameter study; in run {run_id} it ran as {shown}; "
            f"give one of these, e.g. `sharin log {p.root} {trips[-1]}`"
        )
    if pending:
        return c.rel
    raise ProjectError(f"{c.rel} has not run yet in run {run_id}")


def _is_trip_of(key: str, c: Component) -> bool:
    chain: list[Component] = []
    x: Component | None = c
    while x is not None and x.parent is not None:
        chain.append(x)
        x = x.parent
    chain.reverse()
    parts = key.split("/")
    if len(parts) != len(chain) or parts == [y.name for y in chain]:
        return False
    for part, y in zip(parts, chain, strict=True):
        if part == y.name:
            continue
        if y.type not in _REPEATING or not part.startswith(y.name + "_"):
            return False
        if y.parent is not None and y.parent.child_named(part) is not None:
            return False  # a component of that name, not a trip
    return True


def _natural(key: str) -> list[Any]:
    """``loop_2`` before ``loop_10``."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", key)]


def stop(project: ProjectRef, *, timeout: float = 30.0) -> bool:
    """Ask the engine running the project to stop; True if one was running."""
    p = _project(project)
    pid = engine_pid(p)
    if pid is None or pid <= 0:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and engine_pid(p) is not None:
        time.sleep(0.05)
    if engine_pid(p) is not None:
        raise RunError(
            f"the engine (pid {pid}) did not stop within {timeout:.0f} s; kill it with `kill {pid}`"
        )
    return True


# ---------------------------------------------------------------------- versioning
def _not_running(p: Project, what: str) -> None:
    pid = engine_pid(p)
    if pid is not None:
        raise BusyError(
            f"{p.root}: cannot {what} while the project runs (engine pid {pid}); `sharin stop` it first"
        )


def save(project: ProjectRef, message: str = "save project") -> bool:
    """Commit the project (WHEEL's Save); False when nothing changed."""
    p = _project(project)
    _not_running(p, "save")
    return git.commit_all(p.root, message)


def revert(project: ProjectRef) -> None:
    """Throw away every change since the last save (WHEEL's Revert)."""
    p = _project(project)
    _not_running(p, "revert")
    git.revert(p.root)


def clean(project: ProjectRef, component: Component | str | None = None) -> None:
    """Remove run outputs and states: back to the last save. The run history in .sharin/ stays."""
    p = _project(project)
    _not_running(p, "clean")
    sub = ""
    if component is not None:
        sub = _component(p, component).rel
    git.clean(p.root, sub)
