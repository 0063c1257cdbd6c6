"""Projects: a ``<name>.wheel`` directory with ``prj.wheel.json`` and one ``cmp.wheel.json`` per component."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from ..errors import BusyError, Problem, ProjectError
from ._component import (
    COMPONENT_FILE,
    PROJECT_FILE,
    PROJECT_SUFFIX,
    ROOT_PARENT,
    Component,
    ComponentType,
    State,
    default_component,
    is_valid_name,
    new_id,
    script_file_problem,
    step_order,
)
from ._jsonio import json_object, parse_json, read_bytes, show_json, write_json_atomic
from ._paths import Bounds, name_problem

__all__ = ["Project", "edit_lock", "find_project_root", "known_keys", "project_header"]

#: sharin's own directory in a project, and the lock an engine holds while it runs
_SHARIN_DIR = ".sharin"
_ENGINE_LOCK = "engine.lock"
_ENGINE_PID = "engine.pid"
_PARAMETER_FILE = "parameterSetting.json"  #: WHEEL's default parameter file of a study
_BRIEF_HOLD = 2.0  #: seconds an edit waits for a lock held by a command that is not an engine

#: (project root, thread) -> (lock fd, depth): the locks this process holds, re-entrant per
#: thread; another thread's edit opens the file anew, and flock makes it wait like a process
_held: dict[tuple[Path, int], tuple[int, int]] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def edit_lock(root: Path) -> Iterator[None]:
    """Hold the project's engine lock while it is edited (re-entrant within this process).

    An engine holds the same ``flock`` for the whole of a run, so an edit is refused (with
    :class:`BusyError`) while a run goes on, and a run cannot start in the middle of an edit.
    """
    key = (root, threading.get_ident())
    with _held_guard:
        fd, depth = _held.get(key, (-1, 0))
    if depth == 0:  # the root as held (a project's root is resolved when opened) or resolved
        key = (root.resolve(), key[1])
        with _held_guard:
            fd, depth = _held.get(key, (-1, 0))
    if depth == 0:
        fd = _take_lock(key[0])
    with _held_guard:
        _held[key] = (fd, depth + 1)
    try:
        yield
    finally:
        with _held_guard:
            fd, depth = _held[key]
            if depth == 1:
                del _held[key]
            else:
                _held[key] = (fd, depth - 1)
        if depth == 1:
            os.close(fd)  # releases the flock


def _take_lock(root: Path) -> int:
    d = root / _SHARIN_DIR
    if d.is_symlink():
        raise ProjectError(
            "is a symbolic link; sharin keeps its own files here, so make it a plain "
            "directory (or remove it)",
            path=d,
        )
    try:
        d.mkdir(exist_ok=True)
        fd = os.open(d / _ENGINE_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise ProjectError(f"cannot open the project's lock file ({e.strerror})", path=d) from None
    deadline = time.monotonic() + _BRIEF_HOLD
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        try:
            pid: int | None = int((d / _ENGINE_PID).read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # another command's edit or look (no engine): over in a moment
    os.close(fd)
    if pid is None:
        raise BusyError(
            f"{root}: another sharin command is using the project now; try again when it is done"
        )
    raise BusyError(
        f"{root}: cannot change the project while it runs (engine pid {pid}); wait for the "
        "run to end, or `sharin stop` it first"
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def _edit(method: _F) -> _F:
    """An edit method: refused while an engine runs the project, and no run starts during it."""

    @functools.wraps(method)
    def wrapper(self: Project, *args: Any, **kwargs: Any) -> Any:
        with edit_lock(self.root):
            try:
                return method(self, *args, **kwargs)
            finally:
                _cache_forget(self.root)

    return cast(_F, wrapper)


def _now() -> str:
    return time.strftime("%Y/%m/%d-%H:%M:%S")


def find_project_root(path: Path | str) -> Path:
    """The project directory for ``path``: the directory itself, or the one holding a ``prj.wheel.json`` file."""
    text = os.fspath(path)
    if "\0" in text:
        raise ProjectError(f"{text!r} is no directory name (it holds a NUL character)")
    p = Path(os.path.expanduser(text))  # as the shell: ~unknown stays as it is
    if p.is_file() and p.name == PROJECT_FILE:
        return p.parent.resolve()
    if (p / PROJECT_FILE).is_file():
        return p.resolve()
    short = p.with_name(p.name + PROJECT_SUFFIX) if p.name else p
    if not p.exists() and not p.name.endswith(PROJECT_SUFFIX) and (short / PROJECT_FILE).is_file():
        return short.resolve()  # `demo` for `demo.wheel`
    if not p.exists():
        raise ProjectError("no such project directory; create one with `sharin new`", path=p)
    raise ProjectError(
        f"not a project: there is no {PROJECT_FILE} here; create one with `sharin new`, "
        "or give the path of a <name>.wheel directory",
        path=p,
    )


def _name_of(root: Path, data: dict[str, Any]) -> str:
    return str(data.get("name") or root.name.removesuffix(PROJECT_SUFFIX))


def _state_of(data: dict[str, Any]) -> str:
    return str(data.get("state") or State.NOT_STARTED)


def project_header(path: Path | str) -> tuple[Path, str, str]:
    """The root, name and state of the project at ``path``, as :class:`Project` gives them,
    from ``prj.wheel.json`` alone (no component is read, nothing is type-checked): what
    ``status`` shows. An unreadable ``prj.wheel.json`` gives the directory's name and
    not-started, as :meth:`Project.open` does."""
    root = find_project_root(path)
    file = root / PROJECT_FILE
    try:
        data = json_object(parse_json(read_bytes(file), file), file)
    except ProjectError:
        data = {}
    return root, _name_of(root, data), _state_of(data)


class Project:
    """A project loaded from disk. Edits go through methods that write the JSON files atomically."""

    def __init__(self, root: Path, data: dict[str, Any], root_component: Component) -> None:
        self.root = root
        self.data = data
        self.root_component = root_component
        self.load_problems: list[Problem] = []
        #: files that could not be read as JSON objects at load: never overwritten
        self.unreadable: set[Path] = set()
        #: directories of loop trips and parameter-study instances left by runs
        self.instance_dirs: list[Path] = []
        self.by_id: dict[str, Component] = {}
        self._batch_depth = 0
        self._batch_dirty: set[Component | None] = set()
        self._batch_stage: list[Path] = []
        self._index()

    # ------------------------------------------------------------------ loading
    @classmethod
    def open(cls, path: Path | str, *, cached: bool = False) -> Project:
        """Open a project; every problem in its files (unreadable, not JSON, a field of the
        wrong type) is in :attr:`load_problems` instead of raised, so that a broken project
        still opens for ``status``, ``revert`` and ``clean`` (``validate`` lists them).

        ``cached``: use the process-wide cache (see :func:`_cache_get`) — no file is read
        again while ``prj.wheel.json``, every ``cmp.wheel.json`` and every directory the
        project was read from are unchanged. Each call returns a project of its own, so an
        edit of one never shows in another."""
        root = find_project_root(path)
        if cached:
            hit = _cache_get(root)
            if hit is not None:
                return hit.build(cls)
        began = time.time_ns()
        read = _Reading(root, keep=cached)
        project = read.project(cls)
        if cached:
            _cache_put(root, read.snapshot(project), began)
        return project

    def _index(self) -> None:
        self.by_id = {}
        for c in self.root_component.walk():
            if c.id and c.id not in self.by_id:
                self.by_id[c.id] = c

    # ----------------------------------------------------------------- creating
    @classmethod
    def create(cls, path: Path | str, *, description: str = "", git: bool = True) -> Project:
        """Create an empty project. ``path`` gets the ``.wheel`` suffix if it lacks it."""
        p = Path(path).expanduser()
        if not p.name.endswith(PROJECT_SUFFIX):
            p = p.with_name(p.name + PROJECT_SUFFIX)
        name = p.name[: -len(PROJECT_SUFFIX)]
        if not is_valid_name(name):
            raise ProjectError(
                f"project name {name!r} may use only letters, digits, '_' and '-'", path=p
            )
        if p.exists() and any(p.iterdir()):
            raise ProjectError(
                "already exists and is not empty; choose another name or remove it", path=p
            )
        p.mkdir(parents=True, exist_ok=True)
        p = p.resolve()
        rc = default_component(ComponentType.WORKFLOW, name, ROOT_PARENT)
        rc["description"] = description or None
        now = _now()
        data: dict[str, Any] = {
            "version": 2,
            "name": name,
            "description": description,
            "state": State.NOT_STARTED.value,
            "root": str(p),
            "ctime": now,
            "mtime": now,
            "componentPath": {rc["ID"]: "./"},
        }
        write_json_atomic(p / COMPONENT_FILE, rc)
        write_json_atomic(p / PROJECT_FILE, data)
        (p / ".gitignore").write_text(".sharin/\nwheel.log\n")
        project = cls(p, data, Component(rc, p, ""))
        if git:
            from . import _git

            _git.init(p)
            _git.commit_all(p, "create new project")
        return project

    @classmethod
    def copy(cls, src: Path | str, dst: Path | str, *, git: bool = True) -> Project:
        """Copy a project (for instance a shipped example) to a new place and make it a repository."""
        import shutil

        from . import _git

        s = find_project_root(src)
        d = Path(dst).expanduser()
        if d.exists() and any(d.iterdir()):
            raise ProjectError("already exists and is not empty", path=d)
        shutil.copytree(
            s,
            d,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".git", ".sharin"),
        )
        project = cls.open(d)
        project.data["root"] = str(project.root)
        name = project.root.name.removesuffix(PROJECT_SUFFIX)
        if is_valid_name(name) and name != project.data.get("name"):
            project.data["name"] = name
            project.root_component.data["name"] = name
            project.write_component(project.root_component)
        project.write_project()
        if git and not _git.is_repo(project.root):
            _git.init(project.root)
            _git.commit_all(project.root, "import project")
        return project

    # ------------------------------------------------------------------ lookups
    @property
    def name(self) -> str:
        return _name_of(self.root, self.data)

    @property
    def state(self) -> str:
        return _state_of(self.data)

    def components(self) -> list[Component]:
        """All components below the root workflow, parents first."""
        return self.root_component.walk()[1:]

    def component(self, ref: str) -> Component:
        """Find a component by path (``wf0/task1``), ID, or unique name."""
        ref = ref.strip().strip("/")
        if ref in ("", "."):
            return self.root_component
        for c in self.root_component.walk():
            if c.rel == ref:
                return c
        if ref in self.by_id:
            return self.by_id[ref]
        named = [c for c in self.components() if c.name == ref]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            paths = ", ".join(c.rel for c in named)
            raise ProjectError(f"component name {ref!r} is ambiguous ({paths}); give its path")
        known = ", ".join(c.rel for c in self.components()) or "none"
        raise ProjectError(
            f"no component {ref!r} in project {self.name} (components: {known})", path=self.root
        )

    # ------------------------------------------------------------------ editing
    def write_component(self, c: Component) -> None:
        self._writable(c.file)
        _cache_forget(self.root)
        write_json_atomic(c.file, c.data)

    def _writable(self, path: Path) -> None:
        if path in self.unreadable:
            raise ProjectError(
                "could not be read when the project was opened, so sharin does not overwrite "
                "it; repair it by hand (or `sharin revert` to the last save) and try again",
                path=path,
            )

    def write_project(self) -> None:
        self._writable(self.root / PROJECT_FILE)
        _cache_forget(self.root)
        self.data["componentPath"] = {
            c.id: ("./" if not c.rel else f"./{c.rel}") for c in self.root_component.walk()
        }
        write_json_atomic(self.root / PROJECT_FILE, self.data)

    def touch(self) -> None:
        self.data["mtime"] = _now()
        if self._batch_depth:
            self._batch_dirty.add(None)
        else:
            self.write_project()

    @contextlib.contextmanager
    def batch(self) -> Iterator[Project]:
        """Defer writing ``prj.wheel.json`` and containers' JSON to the end of a block of edits.

        Adding 10,000 components one by one otherwise rewrites the growing project file each time.
        The project stays locked against runs for the whole block.
        """
        with edit_lock(self.root), self._deferred():
            yield self

    @contextlib.contextmanager
    def _deferred(self) -> Iterator[Project]:
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if not self._batch_depth:
                dirty, self._batch_dirty = self._batch_dirty, set()
                staged, self._batch_stage = self._batch_stage, []
                if staged:
                    from . import _git

                    if _git.is_repo(self.root):
                        _git.add(self.root, staged)
                for c in dirty:
                    if c is not None:
                        self._write_container(c)
                if dirty:
                    self.write_project()

    def _write_container(self, c: Component) -> None:
        """Write a container with its ``descendants`` (child IDs) brought up to date."""
        if self._batch_depth:
            self._batch_dirty.add(c)
            return
        c.data["descendants"] = [x.id for x in c.children]
        self.write_component(c)

    @_edit
    def add_component(
        self,
        ctype: str,
        name: str,
        parent: Component | None = None,
        *,
        scripts: Mapping[str, str] | None = None,
        **props: Any,
    ) -> Component:
        """Add a component (its directory and ``cmp.wheel.json``) under ``parent`` (default: root),
        with ``scripts`` (file name → text, made executable) written in its directory.

        All of it or nothing: when a step fails, what was done is taken back and the error
        raised."""
        parent = parent or self.root_component
        try:
            ComponentType(ctype)
        except ValueError:
            kinds = ", ".join(t.value for t in ComponentType)
            raise ProjectError(f"unknown component type {ctype!r}; use one of: {kinds}") from None
        if not is_valid_name(name):
            raise ProjectError(f"component name {name!r} may use only letters, digits, '_' and '-'")
        if parent.type not in _CONTAINERS:
            raise ProjectError(
                f"{parent.rel or 'root'} is a {parent.type}; components can only be added "
                "to a workflow, loop, parameterStudy or stepjob"
            )
        directory = parent.directory / name
        if (directory / COMPONENT_FILE).exists():  # O(1): components are directories
            raise ProjectError(
                f"{parent.rel or 'the project root'} already has a component named {name!r}"
            )
        data = default_component(ctype, name, parent.id)
        rel = f"{parent.rel}/{name}" if parent.rel else name
        for key, value in props.items():
            _check_property(ctype, rel, key, value)
            data[key] = value
        _refuse_unsafe(Component(data, parent.directory / name, rel, parent=parent), self.root)
        directory = parent.directory / name
        if directory.exists():
            raise ProjectError(
                "a directory of that name is in the way; remove or rename it", path=directory
            )
        directory.mkdir()
        rel = f"{parent.rel}/{name}" if parent.rel else name
        comp = Component(data, directory, rel, parent=parent)
        parent.children.append(comp)
        self.by_id[comp.id] = comp
        try:
            with self.all_or_nothing(parent):  # the parent's file and prj.wheel.json
                if "descendants" in parent.data:
                    self._write_container(parent)
                self.write_component(comp)
                if ctype == ComponentType.PARAMETER_STUDY:
                    _write_parameter_skeleton(comp)
                for file, text in (scripts or {}).items():
                    _write_script(directory, file, text)
                self._stage(directory)
                self.touch()
        except BaseException:
            self._take_back(comp)
            raise
        return comp

    def _take_back(self, comp: Component) -> None:
        """Undo the adding of ``comp``, just added and not used yet, when what came after
        failed (its parent's file is put back by :meth:`all_or_nothing`): it leaves the tree,
        its directory (only sharin's files) is removed and nothing of it stays staged. What
        cannot be undone is left as it is."""
        import shutil

        parent = comp.parent
        if parent is not None:
            parent.children[:] = [x for x in parent.children if x is not comp]
        self.by_id.pop(comp.id, None)
        self._batch_dirty.discard(comp)
        below = os.fspath(comp.directory) + os.sep
        self._batch_stage[:] = [
            x
            for x in self._batch_stage
            if x != comp.directory and not os.fspath(x).startswith(below)
        ]
        shutil.rmtree(comp.directory, ignore_errors=True)
        if not self._batch_depth:
            from . import _git

            if _git.is_repo(self.root):
                with contextlib.suppress(ProjectError):
                    _git.unstage(self.root, comp.directory)

    def _stage(self, path: Path) -> None:
        """``git add`` a new component (as WHEEL does), so that revert removes it again."""
        self.stage(path)

    @contextlib.contextmanager
    def all_or_nothing(self, *cs: Component) -> Iterator[None]:
        """The block edits ``cs`` and the project's own file all or not at all: when it
        fails, each one's file on disk (``prj.wheel.json`` too) is put back as it was, byte for
        byte (a file WHEEL wrote keeps its layout), and its data in memory read from it again.

        Nothing is copied while the block goes well: only the files' bytes are read (an edit
        writes what it changes at once; what a batch defers, a container's ``descendants``,
        is worked out from its children when the batch ends)."""
        seen: set[int] = set()
        before: list[tuple[Component, bytes | None]] = []
        for c in cs:
            if id(c) not in seen:
                seen.add(id(c))
                before.append((c, _bytes_or_none(c.file)))
        mtime = self.data.get("mtime")
        project_raw = _bytes_or_none(self.root / PROJECT_FILE)
        try:
            yield
        except BaseException:
            from ._jsonio import write_bytes_atomic

            if mtime is None:
                self.data.pop("mtime", None)
            else:
                self.data["mtime"] = mtime
            files = [(c.file, raw) for c, raw in before]
            files.append((self.root / PROJECT_FILE, project_raw))
            for path, raw in files:
                with contextlib.suppress(OSError):
                    if raw is not None and _bytes_or_none(path) != raw:
                        write_bytes_atomic(path, raw)
            for c, raw in before:
                with contextlib.suppress(ProjectError):
                    if raw is not None:
                        c.data = json_object(parse_json(raw, c.file), c.file)
            _cache_forget(self.root)
            raise

    def stage(self, *paths: Path) -> None:
        """``git add`` files sharin wrote into the project (a component, its script …), so that
        they are part of the next save and clean never takes them for run outputs."""
        from . import _git  # subprocess: only when the project is changed

        if self._batch_depth:
            self._batch_stage.extend(paths)  # staged when the batch ends
        elif paths and _git.is_repo(self.root):
            _git.add(self.root, list(paths))

    @_edit
    def remove_component(self, c: Component) -> None:
        """Remove a component, its directory and every edge that touches it.

        The directory is first renamed out of the way (a hidden name the loader skips), then
        the edges are dropped; if that fails, the directory is put back.
        """
        if c.parent is None:
            raise ProjectError("the root workflow cannot be removed")
        parent = c.parent
        aside = c.directory.with_name(f".removing-{c.name}-{c.id}")
        try:
            c.directory.rename(aside)
        except OSError as e:
            raise ProjectError(f"cannot be removed ({e.strerror})", path=c.directory) from None
        changed = [x for x in parent.children if x is not c]
        changed.append(parent)
        before = [copy.deepcopy(x.data) for x in changed]
        written: list[Component] = []
        try:
            for x in changed:
                if _drop_refs(x.data, c.id) or x is parent:
                    if x is parent and "descendants" in x.data:
                        x.data["descendants"] = [y.id for y in changed[:-1]]
                    written.append(x)
                    self.write_component(x)
        except BaseException:
            for x, data in zip(changed, before, strict=True):
                x.data = data
            with contextlib.suppress(OSError):
                for x in written:
                    self.write_component(x)
            aside.rename(c.directory)
            raise
        parent.children.remove(c)
        for x in c.walk():
            self.by_id.pop(x.id, None)
        self.touch()
        import shutil

        shutil.rmtree(aside, ignore_errors=True)

    @_edit
    def connect(self, src: Component, dst: Component, *, else_: bool = False) -> None:
        """A flow edge: ``dst`` runs after ``src`` (the ``else`` branch of an ``if`` with ``else_``)."""
        if src is dst:
            raise ProjectError(f"cannot connect {src.rel} to itself")
        if src.parent is not dst.parent:
            raise ProjectError(
                f"{src.rel} and {dst.rel} have different parents; flow edges join siblings only"
            )
        for c in (src, dst):
            if c.type in (ComponentType.SOURCE, ComponentType.VIEWER, ComponentType.STORAGE):
                raise ProjectError(f"{c.rel} is a {c.type}; it takes file edges only")
        key = "else" if else_ else "next"
        if else_ and src.type != ComponentType.IF:
            raise ProjectError(f"{src.rel} is not an if component; only an if has an else branch")
        _refuse_cycle(src, dst, self.by_id)
        stepjob = src.parent if src.type == dst.type == ComponentType.STEPJOB_TASK else None
        with self.all_or_nothing(src, dst, *(stepjob.children if stepjob is not None else ())):
            lst = src.data.setdefault(key, [])
            if dst.id not in lst:
                lst.append(dst.id)
            prev = dst.data.setdefault("previous", [])
            if src.id not in prev:
                prev.append(src.id)
            self.write_component(src)
            self.write_component(dst)
            if stepjob is not None:
                # as WHEEL: step numbers follow the chain of flow edges
                for i, step in enumerate(step_order(stepjob)):
                    if step.data.get("stepnum") != i:
                        step.data["stepnum"] = i
                        self.write_component(step)
            self.touch()

    @_edit
    def connect_file(self, src: Component, src_name: str, dst: Component, dst_name: str) -> None:
        """A file edge: ``src``'s output ``src_name`` is delivered to ``dst`` as ``dst_name``.

        Edges join siblings, or a parent and one of its children (WHEEL's forwardTo/origin).
        """
        if src is dst:
            raise ProjectError(f"cannot connect a file of {src.rel} to itself")
        if not src_name or not dst_name:
            raise ProjectError("both file names must be given (out-name and in-name)")
        _refuse_unsafe_names(
            (src, "outputFiles" if dst.parent is not src else "inputFiles", src_name),
            (dst, "inputFiles" if src.parent is not dst else "outputFiles", dst_name),
        )
        if src.parent is dst.parent:
            _refuse_cycle(src, dst, self.by_id)
        elif dst.parent is not src and src.parent is not dst:
            raise ProjectError(
                f"{src.rel} and {dst.rel} are neither siblings nor parent and child; "
                "route the file through their common workflow's inputs/outputs"
            )
        to_dst = {"dstNode": dst.id, "dstName": dst_name}
        from_src = {"srcNode": src.id, "srcName": src_name}
        with self.all_or_nothing(src, dst):
            if src.parent is dst.parent:
                _add_output(src.data, src_name, "dst", to_dst)
                _add_input(dst.data, dst_name, "src", from_src)
            elif dst.parent is src:  # parent input forwarded to a child
                _add_input(src.data, src_name, "forwardTo", to_dst)
                _add_input(dst.data, dst_name, "src", from_src)
            else:  # child output handed up to the parent
                _add_output(src.data, src_name, "dst", to_dst)
                _add_output(dst.data, dst_name, "origin", from_src)
            self.write_component(src)
            self.write_component(dst)
            self.touch()

    @_edit
    def disconnect(self, src: Component, dst: Component, *, else_: bool = False) -> None:
        """Remove the flow edge ``src`` → ``dst`` (the ``else`` branch of an ``if`` with ``else_``)."""
        key = "else" if else_ else "next"
        lst = src.data.get(key)
        if not isinstance(lst, list) or dst.id not in lst:
            what = "else edge" if else_ else "flow edge"
            raise ProjectError(
                f"there is no {what} {src.rel} → {dst.rel}; nothing to disconnect"
                + (
                    ""
                    if else_ or src.type != ComponentType.IF
                    else " (add --else for an else edge)"
                )
            )
        with self.all_or_nothing(src, dst):
            src.data[key] = [x for x in lst if x != dst.id]
            still = any(
                isinstance(src.data.get(k), list) and dst.id in src.data[k]
                for k in ("next", "else")
            )
            prev = dst.data.get("previous")
            if not still and isinstance(prev, list):
                dst.data["previous"] = [x for x in prev if x != src.id]
            self.write_component(src)
            self.write_component(dst)
            self.touch()

    @_edit
    def disconnect_file(self, src: Component, src_name: str, dst: Component, dst_name: str) -> None:
        """Remove the file edge from ``src``'s ``src_name`` to ``dst``'s ``dst_name``.

        The file names stay declared in ``outputFiles``/``inputFiles``, as in WHEEL.
        """
        to_dst = {"dstNode": dst.id, "dstName": dst_name}
        from_src = {"srcNode": src.id, "srcName": src_name}
        if dst.parent is src:
            edits = [("inputFiles", src, src_name, "forwardTo", to_dst)]
            edits.append(("inputFiles", dst, dst_name, "src", from_src))
        elif src.parent is dst:
            edits = [("outputFiles", src, src_name, "dst", to_dst)]
            edits.append(("outputFiles", dst, dst_name, "origin", from_src))
        else:
            edits = [("outputFiles", src, src_name, "dst", to_dst)]
            edits.append(("inputFiles", dst, dst_name, "src", from_src))
        with self.all_or_nothing(src, dst):
            found = [
                _drop_link(c.data, fkey, name, lkey, link) for fkey, c, name, lkey, link in edits
            ]
            if not any(found):
                raise ProjectError(
                    f"there is no file edge {src.rel}:{src_name} → {dst.rel}:{dst_name}; "
                    "nothing to disconnect"
                )
            self.write_component(src)
            self.write_component(dst)
            self.touch()

    def check_property(self, c: Component, key: str, value: Any) -> None:
        """Raise a ProjectError naming the file and field when ``value`` does not fit ``key``,
        or when a file the edit writes could not be read when the project was opened."""
        _check_property(c.type, c.rel, key, value)
        self._writable(c.file)
        self._writable(self.root / PROJECT_FILE)

    @_edit
    def set_property(self, c: Component, key: str, value: Any) -> None:
        self.set_properties(c, {key: value})

    @_edit
    def set_properties(self, c: Component, values: Mapping[str, Any]) -> None:
        """Set fields of ``c`` (``name`` renames it), all or none: every value is checked
        before anything is written, and a write that fails puts back what was written."""
        for key, value in values.items():
            if key in ("ID", "parent", "type"):
                raise ProjectError(
                    f"{key!r} cannot be changed (it is set when a component is made)"
                )
            self.check_property(c, key, value)
        rest = {k: v for k, v in values.items() if k != "name"}
        if rest:
            _refuse_unsafe_change(c, rest, self.root)
        if "name" in values:
            self._check_rename(c, str(values["name"]))
        with self.all_or_nothing(c):
            if rest:
                c.data.update(rest)
                self.write_component(c)
            if "name" in values:
                self.rename(c, str(values["name"]))
            else:
                self.touch()

    def _check_rename(self, c: Component, name: str) -> Path:
        """The new directory of ``c`` renamed ``name``, or the error that refuses it."""
        if c.parent is None:
            raise ProjectError("rename the project directory itself to rename a project")
        if not is_valid_name(name):
            raise ProjectError(f"component name {name!r} may use only letters, digits, '_' and '-'")
        if c.parent.child_named(name) is not None:
            raise ProjectError(f"{c.parent.rel or 'the project root'} already has {name!r}")
        new_dir = c.directory.parent / name
        if new_dir.exists():
            raise ProjectError("a directory of that name is in the way", path=new_dir)
        return new_dir

    @_edit
    def rename(self, c: Component, name: str) -> None:
        new_dir = self._check_rename(c, name)
        assert c.parent is not None  # the root is refused above
        old_dir, old_rel = c.directory, c.rel
        c.directory.rename(new_dir)
        new_rel = f"{c.parent.rel}/{name}" if c.parent.rel else name

        def move(rel: str, to: str) -> None:
            for x in c.walk():
                x.rel = to + x.rel[len(rel) :]
                x.directory = self.root / x.rel

        move(old_rel, new_rel)
        try:
            with self.all_or_nothing(c):
                c.data["name"] = name
                self.write_component(c)
                self.touch()
        except BaseException:
            move(new_rel, old_rel)
            with contextlib.suppress(OSError):
                new_dir.rename(old_dir)
            raise

    # ------------------------------------------------------------------ state
    def set_project_state(self, state: str) -> None:
        self.data["state"] = state
        self.write_project()

    def new_id(self) -> str:
        return new_id()


# ---------------------------------------------------------------------- reading, and the cache
#: (inode, size, mtime, ctime) of a file or directory as read; None: it was not there
_Stamp = tuple[int, int, int, int] | None
#: a snapshot is kept only when everything read was last modified longer ago than this (ns):
#: a file changed again within its file system's timestamp granularity (ext4: a clock tick,
#: FAT: 2 s) could keep its mtime, so a project changed that recently is read every time
_RECENT_NS = 2_000_000_000
_CACHE_ENTRIES = 32  #: projects the cache holds at most
_CACHE_PROJECT_BYTES = 4 << 20  #: a project whose files are larger is read every time
_CACHE_TOTAL_BYTES = 32 << 20  #: the bytes of all cached projects' files together


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _stamp(st: os.stat_result | None) -> _Stamp:
    return None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Reading:
    """One reading of a project from disk. Keeps what a :class:`_Snapshot` needs: the bytes of
    each file and the stamp of everything looked at, taken before it was read."""

    def __init__(self, root: Path, *, keep: bool) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.unreadable: set[Path] = set()
        #: the bytes of each file read, while ``keep`` and they fit in a snapshot
        self.raw: dict[Path, bytes] = {}
        self.keep = keep
        self.size = 0
        self.stamps: list[tuple[Path, _Stamp]] = []

    def load(
        self, path: Path, rel: str, kind: str, *, nested: bool = False
    ) -> dict[str, Any] | None:
        """Read a project file (``kind`` "project" or "component") and type-check every field;
        problems go into :attr:`problems` (named ``rel``); None when it is not a JSON object.

        Its bytes are kept for a snapshot unless it is a loop's or a study's instance (a
        ``nested`` component file with ``subComponent``): a snapshot needs only the stamps of
        those, and a study of 10,000 instances stays small enough to cache."""
        from ._schema import check_project_file  # msgspec: when a project is first read

        try:
            raw = read_bytes(path)
            data = json_object(parse_json(raw, path), path)
        except ProjectError as e:
            self.problems.append(Problem(rel, "", str(e).removeprefix(f"{path}: ")))
            self.unreadable.add(path)
            return None
        if not nested or data.get("subComponent") is not True:
            self.size += len(raw)
            if self.keep and self.size <= _CACHE_PROJECT_BYTES:
                self.raw[path] = raw
            elif self.raw:
                self.raw.clear()  # too large to cache: not kept while the rest is read
        self.problems.extend(check_project_file(kind, data, rel))
        return data

    def project(self, cls: type[Project]) -> Project:
        root = self.root
        for name in (PROJECT_FILE, COMPONENT_FILE):
            self.stamps.append((root / name, _stamp(_stat(root / name))))
        data = self.load(root / PROJECT_FILE, PROJECT_FILE, "project")
        rc_data = self.load(root / COMPONENT_FILE, COMPONENT_FILE, "component")
        root_c = Component(rc_data or {}, root, "")
        instances: list[Path] = []
        stack = [root_c]
        while stack:
            c = stack.pop()
            if c.type not in _CONTAINERS and c is not root_c:
                continue
            self.stamps.append((c.directory, _stamp(_stat(c.directory))))
            try:
                entries = sorted(os.scandir(c.directory), key=lambda e: e.name)
            except OSError as e:
                raise ProjectError(
                    f"cannot list directory ({e.strerror})", path=c.directory
                ) from None
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                cfile = Path(entry.path) / COMPONENT_FILE
                st = _stat(cfile)
                if st is None or not stat.S_ISREG(st.st_mode):
                    # not a component: a cmp.wheel.json made in it changes the directory
                    self.stamps.append((Path(entry.path), _stamp(_stat(Path(entry.path)))))
                    continue
                self.stamps.append((cfile, _stamp(st)))
                rel = f"{c.rel}/{entry.name}" if c.rel else entry.name
                cdata = self.load(cfile, f"{rel}/{COMPONENT_FILE}", "component", nested=True)
                if cdata is None:
                    continue
                if cdata.get("subComponent") is True:
                    instances.append(Path(entry.path))  # a loop or parameter-study instance
                    continue
                child = Component(cdata, Path(entry.path), rel, parent=c)
                if cdata.get("parent") != c.id:
                    self.problems.append(
                        Problem(
                            f"{rel}/{COMPONENT_FILE}",
                            "parent",
                            f"is {show_json(cdata.get('parent'))} but the component sits in "
                            f"{c.rel or 'the project root'} whose ID is {show_json(c.id)}; "
                            "set it to the enclosing component's ID",
                        )
                    )
                c.children.append(child)
                stack.append(child)
        project = cls(root, data or {}, root_c)
        project.load_problems = list(self.problems)
        project.unreadable = set(self.unreadable)
        project.instance_dirs = instances
        return project

    def snapshot(self, project: Project) -> _Snapshot | None:
        """What opening the project again needs while nothing changed (None: too large to keep);
        taken from the bytes read, before anyone can edit the project in memory."""
        if not self.keep or self.size > _CACHE_PROJECT_BYTES:
            return None
        order: dict[int, int] = {}
        parts: list[tuple[bytes | None, Path, str, int]] = []
        for c in project.root_component.walk():  # parents first
            order[id(c)] = len(parts)
            up = -1 if c.parent is None else order[id(c.parent)]
            parts.append((self.raw.get(c.directory / COMPONENT_FILE), c.directory, c.rel, up))
        return _Snapshot(
            stamps=tuple(self.stamps),
            project_raw=self.raw.get(self.root / PROJECT_FILE),
            components=tuple(parts),
            problems=tuple(project.load_problems),
            unreadable=frozenset(project.unreadable),
            instances=tuple(project.instance_dirs),
            size=self.size,
            root=self.root,
        )


class _Snapshot:
    """A project as read from disk, immutable: the bytes of its files and its tree."""

    __slots__ = (
        "components",
        "instances",
        "problems",
        "project_raw",
        "root",
        "size",
        "stamps",
        "unreadable",
    )

    def __init__(
        self,
        *,
        stamps: tuple[tuple[Path, _Stamp], ...],
        project_raw: bytes | None,
        components: tuple[tuple[bytes | None, Path, str, int], ...],
        problems: tuple[Problem, ...],
        unreadable: frozenset[Path],
        instances: tuple[Path, ...],
        size: int,
        root: Path,
    ) -> None:
        self.stamps = stamps
        self.project_raw = project_raw
        self.components = components
        self.problems = problems
        self.unreadable = unreadable
        self.instances = instances
        self.size = size
        self.root = root

    def unchanged(self) -> bool:
        """True while every file and directory read has the stamp it had (stat only)."""
        return all(_stamp(_stat(path)) == was for path, was in self.stamps)

    def recent(self, since_ns: int) -> bool:
        """True when something read was modified at or after ``since_ns`` (its mtime: a later
        change of its inode alone — chmod, a hard link — leaves the content as read)."""
        return any(s is not None and s[2] >= since_ns for _, s in self.stamps)

    def build(self, cls: type[Project]) -> Project:
        """A new project, with JSON objects of its own, from the bytes read."""

        def parsed(raw: bytes | None, path: Path) -> dict[str, Any]:
            return {} if raw is None else json_object(parse_json(raw, path), path)

        made: list[Component] = []
        for raw, directory, rel, up in self.components:
            parent = made[up] if up >= 0 else None
            c = Component(parsed(raw, directory / COMPONENT_FILE), directory, rel, parent=parent)
            if parent is not None:
                parent.children.append(c)
            made.append(c)
        project = cls(self.root, parsed(self.project_raw, self.root / PROJECT_FILE), made[0])
        project.load_problems = list(self.problems)
        project.unreadable = set(self.unreadable)
        project.instance_dirs = list(self.instances)
        return project


#: resolved project root -> its snapshot, least recently used first
_cache: OrderedDict[Path, _Snapshot] = OrderedDict()
_cache_guard = threading.Lock()


def _cache_get(root: Path) -> _Snapshot | None:
    """The cached snapshot of the project at ``root`` while it is unchanged on disk: the
    stamps of ``prj.wheel.json``, every ``cmp.wheel.json`` read and every directory listed
    (a component added, removed or renamed changes its parent directory) are compared."""
    with _cache_guard:
        snap = _cache.get(root)
    if snap is None:
        return None
    fresh = snap.unchanged()
    with _cache_guard:
        if _cache.get(root) is snap:
            if fresh:
                _cache.move_to_end(root)
            else:
                del _cache[root]
    return snap if fresh else None


def _cache_put(root: Path, snap: _Snapshot | None, began_ns: int) -> None:
    """Keep ``snap`` (read from ``began_ns`` on) unless a file in it had just been changed."""
    keep = snap is not None and not snap.recent(began_ns - _RECENT_NS)
    with _cache_guard:
        _cache.pop(root, None)
        if snap is None or not keep:
            return
        _cache[root] = snap
        total = sum(s.size for s in _cache.values())
        while len(_cache) > _CACHE_ENTRIES or total > _CACHE_TOTAL_BYTES:
            _, dropped = _cache.popitem(last=False)
            total -= dropped.size


def _cache_forget(root: Path) -> None:
    """Drop the project at ``root`` from the cache (this process has just written to it)."""
    with _cache_guard:
        _cache.pop(root, None)


_CONTAINERS = {t.value for t in ComponentType} & {
    "workflow",
    "for",
    "while",
    "foreach",
    "parameterStudy",
    "stepjob",
}


def _bytes_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write_script(directory: Path, name: str, text: str) -> None:
    """A new executable file ``name`` in a component's directory sharin has just made
    (an existing file, or a name :func:`script_file_problem` refuses, is an error)."""
    problem = script_file_problem(name)
    if problem is not None:
        raise ProjectError(problem, path=directory)
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(directory / name, 0o755, follow_symlinks=False)  # whatever the umask


def _check_property(ctype: str, rel: str, key: str, value: Any) -> None:
    from . import _schema  # msgspec: only when a property is set

    file = f"{rel}/{COMPONENT_FILE}" if rel else COMPONENT_FILE
    problem = _schema.check_value(ctype, key, value, file)
    if problem is not None:
        raise ProjectError(f"{problem}; nothing was changed")


def _add_output(data: dict[str, Any], name: str, key: str, link: dict[str, str]) -> None:
    files = data.setdefault("outputFiles", [])
    for f in files:
        if f.get("name") == name:
            lst = f.setdefault(key, [])
            if link not in lst:
                lst.append(link)
            return
    files.append(
        {"name": name, "dst": [], key: [link]} if key != "dst" else {"name": name, "dst": [link]}
    )


def _add_input(data: dict[str, Any], name: str, key: str, link: dict[str, str]) -> None:
    files = data.setdefault("inputFiles", [])
    for f in files:
        if f.get("name") == name:
            lst = f.setdefault(key, [])
            if link not in lst:
                lst.append(link)
            return
    files.append(
        {"name": name, "src": [], key: [link]} if key != "src" else {"name": name, "src": [link]}
    )


def _drop_refs(data: dict[str, Any], cid: str) -> bool:
    changed = False
    for key in ("previous", "next", "else"):
        lst = data.get(key)
        if isinstance(lst, list) and cid in lst:
            data[key] = [x for x in lst if x != cid]
            changed = True
    for fkey, lkey, nkey in (
        ("inputFiles", "src", "srcNode"),
        ("inputFiles", "forwardTo", "dstNode"),
        ("outputFiles", "dst", "dstNode"),
        ("outputFiles", "origin", "srcNode"),
    ):
        for f in data.get(fkey) or []:
            links = f.get(lkey)
            if isinstance(links, list):
                kept = [x for x in links if not (isinstance(x, dict) and x.get(nkey) == cid)]
                if len(kept) != len(links):
                    f[lkey] = kept
                    changed = True
    return changed


def _refuse_unsafe(c: Component, root: Path, before: Component | None = None) -> None:
    """Raise when a name in ``c`` would reach outside its directory or the project (only the
    problems ``before`` did not have, when given): edits are refused before anything is
    written."""
    from ._names import name_problems  # the expression parser: only when editing

    bounds = Bounds.of(root)
    problems = name_problems(c, bounds)
    if before is not None:
        known = set(name_problems(before, bounds))
        problems = [x for x in problems if x not in known]
    if problems:
        raise ProjectError("; ".join(str(x) for x in problems))


def _refuse_unsafe_change(c: Component, values: Mapping[str, Any], root: Path) -> None:
    """Refuse setting ``values`` when a new value holds a name that leaves the directory."""
    trial = Component({**c.data, **values}, c.directory, c.rel, parent=c.parent)
    _refuse_unsafe(trial, root, before=c)


def _refuse_unsafe_names(*ends: tuple[Component, str, str]) -> None:
    """Refuse a file edge whose names leave the components' directories."""
    for c, field, name in ends:
        problem = name_problem(name)
        if problem is not None:
            file = f"{c.rel}/{COMPONENT_FILE}" if c.rel else COMPONENT_FILE
            raise ProjectError(f"{file} [{field}[{name}]]: {name!r} {problem}")


def _drop_link(data: dict[str, Any], fkey: str, name: str, lkey: str, link: dict[str, str]) -> bool:
    changed = False
    for f in data.get(fkey) or []:
        if isinstance(f, dict) and f.get("name") == name and isinstance(f.get(lkey), list):
            kept = [x for x in f[lkey] if x != link]
            if len(kept) != len(f[lkey]):
                f[lkey] = kept
                changed = True
    return changed


def _waits_for(c: Component) -> set[str]:
    """The IDs ``c`` waits for: flow edges into it and producers of its input files."""
    out = set(c.previous)
    for inp in c.input_files:
        out.update(link.node for link in inp.src)
    return out


def _refuse_cycle(src: Component, dst: Component, by_id: Mapping[str, Component]) -> None:
    """Refuse an edge ``src`` → ``dst`` between siblings when ``src`` already waits for ``dst``.

    Only what ``src`` waits for is walked, each sibling found by its ID (``by_id``, the
    project's map; the siblings are listed only for an ID it does not place among them), so
    that adding the edges of 10,000 siblings one by one does not list them 10,000 times."""
    parent = src.parent
    if parent is None:
        return
    listed: dict[str, Component] | None = None

    def sibling(x: str) -> Component | None:
        nonlocal listed
        c = by_id.get(x)
        if c is not None and c.parent is parent:
            return c
        if listed is None:
            listed = {k.id: k for k in parent.children}
        return listed.get(x)

    came_from: dict[str, str] = {src.id: ""}
    todo = [src]
    while todo:
        node = todo.pop()
        for up in _waits_for(node):
            if up in came_from:
                continue
            c = sibling(up)
            if c is None:
                continue
            came_from[up] = node.id
            if up == dst.id:
                chain = [dst.id]
                while chain[-1] != src.id:
                    chain.append(came_from[chain[-1]])
                names = " → ".join(_shown_name(sibling(x), x) for x in [src.id, *chain])
                raise ProjectError(
                    f"connecting {src.rel} to {dst.rel} would make a cycle ({names}); "
                    f"{src.name} already waits for {dst.name}"
                )
            todo.append(c)


def _shown_name(c: Component | None, fallback: str) -> str:
    return c.name if c is not None else fallback


def _write_parameter_skeleton(c: Component) -> None:
    """An empty ``parameterSetting.json`` for a new parameter study, as WHEEL writes it.

    Only under WHEEL's default name: a file the user named is theirs to write.
    """
    if c.data.get("parameterFile") != _PARAMETER_FILE:
        return
    path = c.directory / _PARAMETER_FILE
    if not path.exists():
        write_json_atomic(
            path, {"version": 2, "targetFiles": [], "params": [], "scatter": [], "gather": []}
        )


#: fields WHEEL's components have besides those of a new component (counters, run-time marks)
_EXTRA_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({"subComponent", "originalName", "initialized", "restarting", "descendants"}),
    "task": frozenset({"checker", "sourceScript"}),
    "stepjobTask": frozenset({"checker", "sourceScript"}),
    "bulkjobTask": frozenset({"checker", "sourceScript"}),
    "parameterStudy": frozenset({"numTotal", "numFinished", "numFailed"}),
    "for": frozenset({"skipCopy", "currentIndex", "prevIndex"}),
    "while": frozenset({"skipCopy", "currentIndex", "prevIndex"}),
    "foreach": frozenset({"skipCopy", "currentIndex", "prevIndex"}),
    "storage": frozenset({"inputFiles", "outputFiles", "host", "storagePath"}),
    "hpciss": frozenset({"inputFiles", "outputFiles", "host", "storagePath"}),
    "hpcisstar": frozenset({"inputFiles", "outputFiles", "host", "storagePath"}),
}


def known_keys(ctype: str) -> frozenset[str]:
    """The fields WHEEL's component of type ``ctype`` has (empty for an unknown type)."""
    try:
        ComponentType(ctype)
    except ValueError:
        return frozenset()
    base = set(default_component(ctype, "x", ROOT_PARENT))
    return frozenset(base | _EXTRA_KEYS[""] | _EXTRA_KEYS.get(ctype, frozenset()))
