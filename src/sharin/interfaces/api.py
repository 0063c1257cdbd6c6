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

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import model
from ..engine import SUPPORTED_TYPES
from ..engine._layout import RunLayout
from ..errors import BusyError, ExecutorError, JournalError, Problem, ProjectError, RunError
from ..model import COMPONENT_FILE, STATUS_FILE, Component, Project, find_project_root

# The engine, the executors, asyncio and the parts of the model a verb does not need (validation,
# cleaning, the host list, as ``model.X``) are imported by the functions that use them, so that
# `sharin status` reads the project and the journal only and `sharin validate` loads no
# scheduler.
if TYPE_CHECKING:
    import asyncio

    from ..engine import (
        Event,
        ExecutorProvider,
        JobHandle,
        JobStatus,
        Journal,
        PlannedStep,
        RunOptions,
        RunRecord,
        RunResult,
        TaskRecord,
    )
    from ..executors import SchedulerDefinition
    from ..executors._ssh import HostCheck
    from ..model import HostConfig
    from ._runs import RunHandle

__all__ = [
    "CleanResult",
    "ProjectStatus",
    "Removal",
    "add_component",
    "add_host",
    "add_task",
    "check_host",
    "clean",
    "connect",
    "connect_files",
    "copy_project",
    "disconnect",
    "disconnect_files",
    "editing",
    "engine_pid",
    "export_project",
    "host_entries",
    "host_entry",
    "import_project",
    "log_paths",
    "new_project",
    "open_project",
    "plan",
    "remove_component",
    "remove_host",
    "removal_preview",
    "replace_host",
    "revert",
    "run",
    "run_async",
    "start_run",
    "stop_async",
    "job_states_async",
    "runs",
    "save",
    "set_properties",
    "set_property",
    "status",
    "unknown_key",
    "stop",
    "unsaved_changes",
    "validate",
    "viewer_images",
]


ProjectRef = Project | str | os.PathLike[str]


def _project(p: ProjectRef) -> Project:
    """The project itself, or the one at a path, read through the process-wide cache (a
    server calling the API on every request does not read the files again while they are
    unchanged)."""
    return p if isinstance(p, Project) else Project.open(Path(p), cached=True)


def _root(p: ProjectRef) -> Path:
    """The project's directory, found by its ``prj.wheel.json`` (nothing else is read)."""
    return p.root if isinstance(p, Project) else find_project_root(Path(p))


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
    """Open a project written by sharin or by WHEEL (read again only when its files changed
    since this process last read it; the project returned is the caller's own)."""
    return Project.open(Path(path), cached=True)


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
    dereference: bool = False,
) -> Path:
    """Write the project's last save as an archive WHEEL can import (``WHEEL_project_<name>.tgz``).

    A symbolic link that is absolute or leaves the project is an error (import refuses it),
    unless ``dereference``: then the archive holds a copy of its target.
    """
    return model.export_project(
        _root(project),
        Path(dest) if dest is not None else None,
        name=name,
        mail=mail,
        memo=memo,
        dereference=dereference,
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
        known_hosts=model.load_hosts().keys(),
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
        prel = _component(p, parent).rel if parent is not None else ""
        where = f"{prel}/{name}" if prel else name
        problem = model.script_file_problem(script)
        if problem is not None:
            raise ProjectError(f"{where}/{COMPONENT_FILE} [script]: {problem}")
        scripts = {}
        if script_text is not None:
            text = script_text if script_text.startswith("#!") else "#!/bin/sh\n" + script_text
            scripts[script] = text if text.endswith("\n") else text + "\n"
        outs = list(outputs)
        if outs:
            props["outputFiles"] = [{"name": o, "dst": []} for o in outs]
        par = _component(p, parent) if parent is not None else None
        # one step: a failure at any point leaves no half-made task
        return p.add_component(ctype, name, par, scripts=scripts, script=script, **props)


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


def set_properties(
    project: ProjectRef, component: Component | str, values: Mapping[str, Any]
) -> None:
    """Set fields of a component's ``cmp.wheel.json``, all of them or none (every value is
    checked before anything is written)."""
    with editing(project) as p:
        p.set_properties(_component(p, component), values)


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
            if n in (COMPONENT_FILE, STATUS_FILE) or (
                n == model.PARAMETER_FILE and _empty_ps(path)
            ):
                continue
            files.append(str(path.relative_to(p.root)))
        for n in dirs:  # links to directories are files to the user too
            if (Path(d) / n).is_symlink():
                files.append(str((Path(d) / n).relative_to(p.root)))
    saved = False
    if model.git.is_repo(p.root):
        changed = model.git.unsaved(p.root, c.rel)
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
    hosts = model.load_hosts()
    if not hosts:
        return _check(p, hosts, {})
    from ..executors import load_schedulers

    return _check(p, hosts, load_schedulers())


def _check(
    p: Project, hosts: Mapping[str, HostConfig], schedulers: Mapping[str, SchedulerDefinition]
) -> list[Problem]:
    from ..executors import step_and_bulk_hosts, step_statement_problems

    step_hosts, bulk_hosts = step_and_bulk_hosts(hosts, schedulers)
    problems = model.check(
        p,
        hosts=hosts.keys(),
        supported_types=SUPPORTED_TYPES,
        step_hosts=step_hosts,
        bulk_hosts=bulk_hosts,
    )
    problems += step_statement_problems(p, hosts, schedulers)
    return problems + _placement_problems(p, hosts, schedulers, problems)


def _placement_problems(
    p: Project,
    hosts: Mapping[str, HostConfig],
    schedulers: Mapping[str, SchedulerDefinition],
    found: list[Problem],
) -> list[Problem]:
    """Components whose host the executors cannot serve (no scheduler, no transport …)."""
    from ..executors import ExecutorRegistry

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
def _refuse_busy(root: Path) -> None:
    """A clear error when an engine runs the project, or another command is changing it."""
    from ._runs import local_run

    pid = engine_pid(root)
    if pid is None and local_run(root) is not None:
        pid = os.getpid()  # started here a moment ago; its engine has not taken the lock yet
    if pid is not None and pid < 0:  # the lock is held without an engine's pid: an edit
        raise BusyError(
            f"{root}: another sharin command is changing the project now; run it again when "
            "that is done"
        )
    if pid is not None:  # said at once (the engine, taking the lock, says it too)
        raise BusyError(
            f"{root}: the project is already running (engine pid {pid}); wait for it, "
            "watch it with `sharin status`, or stop it with `sharin stop`"
        )


async def start_run(
    project: ProjectRef,
    *,
    options: RunOptions | None = None,
    on_event: Callable[[Event], None] | None = None,
    executors: ExecutorProvider | None = None,
    handle_signals: bool = False,
    ask: Callable[[str, bool], str] | None = None,
) -> RunHandle:
    """Validate a project and start running (or resuming) it in the current event loop.

    Returns at once with the run's :class:`~sharin.interfaces.RunHandle`: ``await
    handle.result()`` for the :class:`~sharin.engine.RunResult`, ``handle.stop()`` to stop it,
    ``handle.events`` to subscribe. The run goes on when the handle is dropped. An ``executors``
    provider given here stays open (the caller closes it); one made here is closed at the end.
    ``ask`` answers SSH login prompts, as for :func:`run_async`.
    """
    import asyncio

    from ..engine import Engine, EventBus, Prelude, RunOptions, install_signal_handlers
    from ..errors import ValidationError
    from ..executors import ExecutorRegistry
    from ._runs import RunHandle

    def configuration() -> tuple[dict[str, HostConfig], dict[str, SchedulerDefinition]]:
        hosts = model.load_hosts()
        schedulers: dict[str, SchedulerDefinition] = {}
        if hosts:  # a local-only run reads (and imports) none
            from ..executors import load_schedulers

            schedulers = load_schedulers()
        return hosts, schedulers

    # files are read off the event loop: a server's other clients are not held up
    root = await asyncio.to_thread(_root, project)
    hosts, schedulers = await asyncio.to_thread(configuration)
    opts = options or RunOptions()
    if opts.max_local is None:
        opts.max_local = model.local_job_limit()
    owned = executors is None
    provider = executors or ExecutorRegistry(
        hosts, max_local=opts.max_local, schedulers=schedulers, ask=ask
    )
    # the run's helper processes and its look at git start now, while the project is read
    # and checked below (only its directory is needed for them); a caller's executors are
    # asked only for what the project's tasks name
    prelude = Prelude(root, provider if owned else None)
    try:
        # from the root found above: the project's directory is not looked for a second time
        p = project if isinstance(project, Project) else await asyncio.to_thread(_project, root)
    except BaseException:
        await prelude.discard()
        if owned:
            await provider.close()
        raise
    bus = EventBus()
    if on_event is not None:
        bus.subscribe(on_event)
    engine = Engine(p, provider, options=opts, events=bus, prelude=prelude)
    # the executors the project's tasks name (those the prelude did not start)
    engine.prepare()
    attempt: _FileLists | None = None
    try:
        _refuse_busy(p.root)
        # the project's file list is taken while it is checked: both only read the project
        got = await asyncio.gather(
            _FileLists.start(p.root),
            asyncio.to_thread(_check, p, hosts, schedulers),
            return_exceptions=True,
        )
        if isinstance(got[0], _FileLists):
            attempt = got[0]
        for outcome in got:
            if isinstance(outcome, BaseException):
                raise outcome
        problems = got[1]
        assert isinstance(problems, list)
        if problems:
            raise ValidationError(problems)
    except BaseException:
        if attempt is not None:
            attempt.abandon()
        await engine.discard()
        if owned:
            await provider.close()
        raise
    if handle_signals:
        install_signal_handlers(engine)
    if attempt is not None:
        bus.subscribe(attempt.on_event)

    async def finish() -> None:
        # side by side: the executors' ends (the supervisor's exit) and the file list of the
        # project as the run left it (a walk of the project on a thread) wait on different things
        ends = [provider.close()] if owned else []
        if attempt is not None:
            ends.append(attempt.end())
        for outcome in await asyncio.gather(*ends, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    handle = RunHandle(p.root, engine, bus, finish)
    handle.start()
    # one pass of the loop: the engine's first step takes the project's lock (it does not pause
    # before), so from here on edits are refused as for any running project
    await asyncio.sleep(0)
    return handle


async def run_async(
    project: ProjectRef,
    *,
    options: RunOptions | None = None,
    on_event: Callable[[Event], None] | None = None,
    executors: ExecutorProvider | None = None,
    handle_signals: bool = False,
    ask: Callable[[str, bool], str] | None = None,
) -> RunResult:
    """Validate and run (or resume) a project; returns when the run ends (see
    :func:`start_run` to get a handle at once).

    ``ask(prompt, echo)`` answers an SSH login's passphrase, password or one-time-code prompt
    (asked again when a dropped connection is opened anew); without it only logins that need
    no answer (keys without a passphrase, ssh-agent) work."""
    handle = await start_run(
        project,
        options=options,
        on_event=on_event,
        executors=executors,
        handle_signals=handle_signals,
        ask=ask,
    )
    return await handle.result()


class _FileLists:
    """The lists of the project's files at the start and the end of a run attempt, so that
    clean knows what runs made (see :mod:`sharin.model.cleaning`)."""

    def __init__(self, root: Path, pending: Path) -> None:
        self.root = root
        self.pending = pending
        self.run: int | None = None
        self._moved: asyncio.Future[None] | None = None

    @classmethod
    async def start(cls, root: Path) -> _FileLists | None:
        import asyncio

        if engine_pid(root) is not None:
            return None  # the engine refuses to start: another one runs the project
        pending = RunLayout(root).files_pending
        await asyncio.to_thread(_settle, root)
        await asyncio.to_thread(model.cleaning.write_snapshot, pending, root)
        return cls(root, pending)

    def abandon(self) -> None:
        """The run does not start after all: the start list is not kept."""
        with contextlib.suppress(FileNotFoundError):
            self.pending.unlink()

    def on_event(self, ev: Event) -> None:
        """The run began (its id is known, no task started yet): keep the start list with it."""
        if ev.kind != "run" or ev.key or ev.state != "running" or self.run is not None:
            return
        self.run = ev.run
        import asyncio

        # off the event loop; should the engine die first, the next run or clean adopts it
        self._moved = asyncio.get_running_loop().run_in_executor(None, self._keep, ev.run)

    def _keep(self, run: int) -> None:
        d = RunLayout(self.root).run_dir(run)
        with contextlib.suppress(OSError):
            d.mkdir(parents=True, exist_ok=True)
            os.replace(self.pending, model.cleaning.next_before(d))

    async def end(self) -> None:
        import asyncio

        if self._moved is not None:
            await self._moved
        if self.run is None:
            with contextlib.suppress(FileNotFoundError):
                self.pending.unlink()
            return
        d = RunLayout(self.root).run_dir(self.run)
        have = model.cleaning.attempt_manifests(d)
        if have and not have[-1][2].exists():
            await asyncio.to_thread(model.cleaning.write_snapshot, have[-1][2], self.root)


def _last_activity(j: Journal, run: RunRecord) -> float:
    times = [run.started, run.ended or 0.0]
    for t in j.task_list(run.id):
        times += [t.started or 0.0, t.ended or 0.0]
    return max(times)


def _settle(root: Path) -> None:
    """Attempts whose engine died get their end lists (see :func:`cleaning.settle`)."""
    path = RunLayout(root).journal
    if not path.exists():
        return
    from ..engine import Journal

    try:
        j = Journal(path)
    except JournalError:
        return  # the engine says what to do about it; clean works without the history
    try:
        for r in j.runs():
            d = RunLayout(root).run_dir(r.id)
            have = model.cleaning.attempt_manifests(d)
            if have and not have[-1][2].exists():
                model.cleaning.settle(root, d, _last_activity(j, r))
        pending = RunLayout(root).files_pending
        got = model.cleaning.read_manifest(pending)
        last = j.last_run()
        if got is not None and last is not None and last.started >= got[0]:
            # the engine died between beginning the run and telling us
            d = RunLayout(root).run_dir(last.id)
            if not model.cleaning.attempt_manifests(d):
                d.mkdir(parents=True, exist_ok=True)
                os.replace(pending, model.cleaning.next_before(d))
                model.cleaning.settle(root, d, _last_activity(j, last))
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
    finally:
        j.close()


def run(project: ProjectRef, **kwargs: Any) -> RunResult:
    """Blocking form of :func:`run_async`."""
    import asyncio

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
    from ..engine import Journal
    from ..engine import plan as _plan

    p = _project(project)
    path = RunLayout(p.root).journal
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
    cleaned: bool = False  #: the project was cleaned since the run: it is not resumed

    @property
    def interrupted(self) -> bool:
        """The last run did not end and no engine runs it: ``sharin run`` resumes it."""
        return (
            self.run is not None
            and self.run.state == "running"
            and self.engine_pid is None
            and not self.cleaned
        )


def _journal(root: Path) -> Journal | None:
    path = RunLayout(root).journal
    if not path.exists():
        return None
    from ..engine import Journal

    return Journal(path)


def engine_pid(project: ProjectRef) -> int | None:
    """The pid of the engine running the project now, or None."""
    import fcntl

    layout = RunLayout(_root(project))
    lock = layout.lock
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            return int(layout.pid.read_text().strip())
        except (OSError, ValueError):
            return -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def status(project: ProjectRef, run_id: int | None = None) -> ProjectStatus:
    """The project's state and the tasks of a run (default: the last); of the project's files
    only ``prj.wheel.json`` is read."""
    if isinstance(project, Project):
        root, name, state = project.root, project.name, project.state
    else:
        root, name, state = model.project_header(Path(project))
    j = _journal(root)
    rec: RunRecord | None = None
    tasks: list[TaskRecord] = []
    cleaned = False
    if j is not None:
        try:
            rec = j.run(run_id) if run_id is not None else j.last_run()
            if run_id is not None and rec is None:
                raise ProjectError(f"{root}: there is no run {run_id}; `sharin runs` lists them")
            if rec is not None:
                tasks = j.task_list(rec.id)
                cleaned = j.cleaned_after("", rec.started)
        finally:
            j.close()
    return ProjectStatus(name, state, engine_pid(root), rec, tasks, cleaned)


def job_states(project: ProjectRef, run_id: int | None = None) -> dict[str, JobStatus]:
    """Ask the executors about every task of a run that has a process or job that may still run.

    Handles are grouped by host: one status query per host covers all its jobs (for a batch
    scheduler, one ``stat`` and, for the jobs that left the queue, one ``statAfter``). Inside an
    event loop, use ``await job_states_async(...)``.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job_states_async(project, run_id))
    raise RunError(
        "sharin.job_states() cannot be called while an event loop is running here; use "
        "`await sharin.job_states_async(...)` instead"
    )


async def job_states_async(project: ProjectRef, run_id: int | None = None) -> dict[str, JobStatus]:
    """:func:`job_states` for async code."""
    s = status(project, run_id)
    live = [t for t in s.tasks if t.handle and t.state in ("running", "queued", "unknown")]
    if not live:
        return {}
    from ..engine import JobHandle, JobStatus
    from ..executors import ExecutorRegistry, load_schedulers

    registry = ExecutorRegistry(model.load_hosts(), schedulers=load_schedulers())
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


def runs(project: ProjectRef) -> list[RunRecord]:
    j = _journal(_root(project))
    if j is None:
        return []
    try:
        return j.runs()
    finally:
        j.close()


def run_task_counts(project: ProjectRef) -> dict[int, dict[str, int]]:
    """For every run, how many tasks (``task``, ``stepjobTask``, ``bulkjobTask`` records, the
    trips and instances inside loops and studies included) ended in each state: one query."""
    j = _journal(_root(project))
    if j is None:
        return {}
    try:
        return j.task_counts(("task", "stepjobTask", "bulkjobTask"))
    finally:
        j.close()


def viewer_images(project: ProjectRef, component: Component | str) -> list[Path]:
    """The images a viewer component collected in its directory (links followed), sorted."""
    p = _project(project)
    c = _component(p, component)
    if c.type != "viewer":
        raise ProjectError(f"{c.rel} is a {c.type}, not a viewer")
    from ..engine import viewer_files

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
    j = _journal(p.root)
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
    return RunLayout(p.root).task_logs(rec.id, key)


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
    """Ask the engine running the project to stop and wait for it; True if one was running.

    An engine of this very process (started with :func:`start_run`, as a server does) is asked
    directly, not sent SIGTERM. Called from the thread whose event loop runs that engine, this
    cannot wait: it returns after asking (``await stop_async(...)`` waits)."""
    p = _project(project)
    pid = engine_pid(p)
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        handle = _local_handle(p.root, pid)
        handle.stop()
        if handle.in_loop_thread():
            return True
        if not handle.wait_blocking(timeout):
            raise RunError(f"the run of {p.root} did not stop within {timeout:.0f} s")
        return True
    import signal

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


async def stop_async(project: ProjectRef, *, timeout: float = 30.0) -> bool:
    """:func:`stop` for async code (a server): waits without blocking the event loop."""
    import asyncio

    p = _project(project)
    pid = engine_pid(p)
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        handle = _local_handle(p.root, pid)
        handle.stop()
        if not handle.in_loop_thread():
            done = await asyncio.to_thread(handle.wait_blocking, timeout)
        else:
            try:
                await asyncio.wait_for(handle.result(), timeout)
                done = True
            except TimeoutError:
                done = False
        if not done:
            raise RunError(f"the run of {p.root} did not stop within {timeout:.0f} s")
        return True
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and engine_pid(p) is not None:
        await asyncio.sleep(0.05)
    if engine_pid(p) is not None:
        raise RunError(
            f"the engine (pid {pid}) did not stop within {timeout:.0f} s; kill it with `kill {pid}`"
        )
    return True


def _local_handle(root: Path, pid: int) -> RunHandle:
    from ._runs import local_run

    handle = local_run(root)
    if handle is None:
        raise RunError(
            f"{root}: this process (pid {pid}) holds the project's run lock but runs no engine "
            "for it; the command that holds it must finish first"
        )
    return handle


# ---------------------------------------------------------------------- versioning
def _not_running(root: Path, what: str) -> None:
    pid = engine_pid(root)
    if pid is not None:
        raise BusyError(
            f"{root}: cannot {what} while the project runs (engine pid {pid}); `sharin stop` it first"
        )


def save(project: ProjectRef, message: str = "save project") -> bool:
    """Commit the project (WHEEL's Save); False when nothing changed."""
    root = _root(project)
    _not_running(root, "save")
    return model.git.commit_all(root, message)


def unsaved_changes(project: ProjectRef, component: Component | str | None = None) -> list[str]:
    """Files (below ``component``) changed, staged or deleted since the last save, leaving out
    what runs change (states, status files) and untracked files: what revert would discard."""
    root = _root(project)
    model.git.require_repo(root)
    return model.git.run_changes_and_unsaved(root, _clean_prefix(root, project, component))[1]


def revert(project: ProjectRef) -> list[str]:
    """Throw away every unsaved change since the last save (WHEEL's Revert): tracked files
    back to their saved content, files staged since removed. Files git does not know (run
    outputs, files never saved) stay. Returns the files whose changes were discarded.

    Works on a project whose JSON files are broken: only ``prj.wheel.json``'s place, the
    engine lock and git are used.
    """
    root = _root(project)
    _not_running(root, "revert")
    changed = list(model.git.changed_paths(root))
    model.git.revert(root)
    return changed


@dataclass(frozen=True)
class CleanResult:
    """What a clean did, and what it kept."""

    removed: list[str]  #: files and links runs made, removed
    discarded: list[str]  #: unsaved changes thrown away (with consent)
    changed_since: list[str]  #: files a run made that were changed since: kept
    unknown: list[str]  #: untracked files no recorded run made: kept
    unreadable: list[str]  #: component files that could not be read: their state is kept


def _clean_prefix(root: Path, project: ProjectRef, component: Component | str | None) -> str:
    """The component's path, from a directory path if it is one (no JSON parsed), else by
    name or ID through the parsed project."""
    if component is None:
        return ""
    if isinstance(component, Component):
        return component.rel
    ref = component.strip().strip("/")
    if ref in ("", "."):
        return ""
    if "\0" in ref:
        raise ProjectError(
            f"component {component!r}: a NUL character is in the name; give its name, id or path"
        )
    norm = os.path.normpath(ref)
    if not norm.startswith("..") and not os.path.isabs(norm):
        cfile = root / norm / COMPONENT_FILE
        # a directory of the project itself, reached through no symbolic link
        inside = os.path.realpath(root / norm) == os.path.join(os.path.realpath(root), norm)
        if inside and cfile.is_file():
            return norm.replace(os.sep, "/")
    p = project if isinstance(project, Project) else Project.open(root)
    return _component(p, ref).rel


def _instance_keys(root: Path, prefix: str, keys: set[str]) -> set[str]:
    """Journal keys of the loop trips and parameter-study instances of the component at
    ``prefix`` (``<parent>/<name>_…``, beside it), also of those whose directories are gone."""
    if not prefix:
        return set()
    parent, _, name = prefix.rpartition("/")
    pdir = root / parent if parent else root
    firsts = set()
    for key in keys:
        rest = key[len(parent) + 1 :] if parent else key
        if parent and not key.startswith(parent + "/"):
            continue
        first = rest.split("/", 1)[0]
        if first.startswith(name + "_"):
            firsts.add(first)
    out = set()
    for first in firsts:
        cfile = pdir / first / COMPONENT_FILE
        try:
            is_component = cfile.is_file() and not model.read_json_object(cfile).get("subComponent")
        except ProjectError:
            is_component = False
        if not is_component:  # a sibling component named like an instance is not one
            out.add(f"{parent}/{first}" if parent else first)
    return out


def clean(
    project: ProjectRef,
    component: Component | str | None = None,
    *,
    unsaved: str = "refuse",
    confirm: Callable[[list[str]], bool] | None = None,
) -> CleanResult:
    """Remove what runs made (outputs, delivered inputs, loop trips and parameter-study
    instances, status files) and set every state back to not-started, in the whole project or
    below ``component``; the next run starts afresh. Every file the user wrote stays.

    Unsaved changes (see :func:`unsaved_changes`) are WHEEL's clean's business too: it goes back
    to the last save. ``unsaved`` says what to do with them: ``"discard"`` them (as
    :func:`revert`), ``"keep"`` them, or ``"refuse"`` — then ``confirm(paths)`` is asked, and
    without it or when it says no, nothing changes and the error says what to do.
    The run history in ``.sharin/`` stays.
    """
    if unsaved not in ("refuse", "discard", "keep"):
        raise ProjectError(f"unsaved={unsaved!r}: use 'refuse', 'discard' or 'keep'")
    root = _root(project)
    _not_running(root, "clean")
    model.git.require_repo(root)
    prefix = _clean_prefix(root, project, component)
    run_changed, pending = model.git.run_changes_and_unsaved(root, prefix)
    discard = unsaved == "discard"
    if pending and unsaved == "refuse":
        if confirm is not None and confirm(pending):
            discard = True
        else:
            shown = ", ".join(pending[:8]) + (
                f" and {len(pending) - 8} more" if len(pending) > 8 else ""
            )
            raise ProjectError(
                f"has unsaved changes ({shown}), which clean would throw away; nothing was "
                "changed. Save them first (`sharin save`), keep them and clean only what runs "
                "made (--keep-unsaved), or throw them away (--discard-unsaved)",
                path=root,
            )
    _settle(root)
    from ..engine import Journal

    jpath = RunLayout(root).journal
    try:
        j = Journal(jpath) if jpath.exists() else None
    except JournalError:
        j = None  # unreadable history: only what needs none goes (status files, instances)
    try:
        attempts: list[model.cleaning.RunFiles] = []
        last_clean: dict[str, float] = {}
        instance_of = None
        if j is not None:
            for at, pre in j.cleans():
                last_clean[pre] = max(at, last_clean.get(pre, 0.0))
            for r in j.runs():
                d = RunLayout(root).run_dir(r.id)
                for n, before_path, after_path in model.cleaning.attempt_manifests(d):
                    before = model.cleaning.read_manifest(before_path)
                    after = model.cleaning.read_manifest(after_path)
                    if before is not None and after is not None:
                        attempts.append(
                            model.cleaning.RunFiles(r.id, n, before[1], after[1], after[0])
                        )
        if prefix:
            try:
                data = model.read_json_object(root / prefix / COMPONENT_FILE)
                instance_of = str(data.get("ID") or "") or None
            except ProjectError:
                instance_of = None
        plan = model.cleaning.plan_clean(
            root,
            prefix,
            attempts,
            known=model.git.index_paths(root),
            last_clean=last_clean,
            instance_of=instance_of,
        )
        trash = RunLayout(root).trash(f"{os.getpid()}-{time.time_ns()}")
        moved = model.cleaning.move_aside(root, plan.remove, trash)
        try:
            if discard and pending:
                # emptied directories first, so that git removes those it empties in turn
                model.cleaning.remove_emptied(plan)
                model.git.discard(root, prefix)  # run changes below prefix go back with the rest
            elif run_changed:
                model.git.restore_staged(root, run_changed)
        except BaseException:
            model.cleaning.put_back(moved, trash)
            raise
        model.cleaning.apply_plan(plan, trash)
        if j is not None:  # no journal: no run to start afresh from
            j.mark_cleaned(sorted({*plan.prefixes, *_instance_keys(root, prefix, j.task_keys())}))
    finally:
        if j is not None:
            j.close()
    if isinstance(project, Project):  # the caller's copy of the project says so too
        for c in project.root_component.walk():
            if not prefix or c.rel == prefix or c.rel.startswith(prefix + "/"):
                c.data["state"] = model.State.NOT_STARTED.value
        if not prefix:
            project.data["state"] = model.State.NOT_STARTED.value
    return CleanResult(
        plan.remove,
        pending if discard else [],
        plan.changed_since,
        plan.unknown,
        plan.unreadable,
    )


# ---------------------------------------------------------------------- remote hosts
@dataclass(frozen=True)
class HostEntry:
    """A host of remotehost.json and the file it is in."""

    config: HostConfig
    file: Path


def host_entries() -> list[HostEntry]:
    """Every host sharin knows, in the order of the files read (a label in an earlier file
    hides the same label in a later one)."""
    from ..model._hosts import config_dirs, load_hosts

    seen: set[str] = set()
    out: list[HostEntry] = []
    for d in config_dirs():
        for name, h in load_hosts(d).items():
            if name not in seen:
                seen.add(name)
                out.append(HostEntry(h, d / "remotehost.json"))
    return out


def host_entry(name: str) -> HostEntry:
    """The host labelled ``name`` and its file; a ProjectError listing the known ones."""
    for e in host_entries():
        if e.config.name == name:
            return e
    known = ", ".join(e.config.name for e in host_entries()) or "none"
    raise ProjectError(
        f"no host {name!r} in remotehost.json (known: {known}); add it with `sharin host add`"
    )


def add_host(entry: Mapping[str, Any]) -> HostConfig:
    """Add a host (a remotehost.json entry: name, host, user, port, path, keyFile,
    jobScheduler ...) to the file sharin writes; the label must be new."""
    from ..model._hosts import hosts_file
    from ..model._jsonio import read_json, write_json_atomic

    data = dict(entry)
    import uuid

    data.setdefault("id", uuid.uuid4().hex)
    cfg = model.HostConfig.from_json(data)  # a ProjectError names every wrong field
    if any(e.config.name == cfg.name for e in host_entries()):
        raise ProjectError(
            f"a host named {cfg.name!r} exists already ({host_entry(cfg.name).file}); "
            "choose another name or remove it first with `sharin host remove`"
        )
    path = hosts_file()
    entries = read_json(path) if path.is_file() else []
    if not isinstance(entries, list):
        raise ProjectError("must hold a JSON array of host objects", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, [*entries, data])
    return cfg


def replace_host(name: str, entry: Mapping[str, Any]) -> HostConfig:
    """Replace the host labelled ``name`` by ``entry`` (a remotehost.json entry, as for
    :func:`add_host`), in the file it is in and at its place there; ``entry`` may rename it
    to a label no other host has. The entry's ``id`` is kept when ``entry`` has none."""
    from ..model._jsonio import read_json, write_json_atomic

    found = host_entry(name)  # a ProjectError listing the known ones
    data = dict(entry)
    old_id = found.config.raw.get("id")
    if old_id is not None:
        data.setdefault("id", old_id)
    cfg = model.HostConfig.from_json(data)  # a ProjectError names every wrong field
    if cfg.name != name and any(e.config.name == cfg.name for e in host_entries()):
        raise ProjectError(
            f"a host named {cfg.name!r} exists already ({host_entry(cfg.name).file}); "
            "choose another name"
        )
    entries = read_json(found.file)
    if not isinstance(entries, list):
        raise ProjectError("must hold a JSON array of host objects", path=found.file)
    at = [i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == name]
    if not at:  # changed on disk since it was read
        raise ProjectError(f"has no host {name!r} any more; reload the hosts", path=found.file)
    entries[at[0]] = data
    write_json_atomic(found.file, entries)
    return cfg


def remove_host(name: str) -> Path:
    """Remove a host from the remotehost.json that defines it; returns that file."""
    from ..model._jsonio import read_json, write_json_atomic

    found = host_entry(name)
    entries = read_json(found.file)
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
    write_json_atomic(found.file, kept)
    return found.file


def check_host(name: str, *, ask: Callable[[str, bool], str] | None = None) -> HostCheck:
    """Connect to a host, run ``true`` and look for sbatch, qsub, bsub and pjsub; returns a
    :class:`~sharin.executors._ssh.HostCheck` (round trip, commands found)."""
    import asyncio

    from ..executors import _ssh

    cfg = host_entry(name).config

    async def go() -> HostCheck:
        try:
            return await _ssh.check_host(cfg, ask=ask)
        finally:
            await _ssh.POOL.close()

    return asyncio.run(go())
