"""Validation: every problem in a project, each naming the file and the field and saying what to do."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from ..errors import Problem, ProjectError, ValidationError
from ._compat import task_field_problems
from ._component import (
    COMPONENT_FILE,
    Component,
    ComponentType,
    is_valid_name,
)
from ._expr import ExpressionError, looks_like_script_name, parse_expression
from ._hosts import LOCALHOST
from ._names import name_problems
from ._paths import (
    Bounds,
    UnsafePathError,
    check_real,
    condition_script,
    find_root,
    name_problem,
)
from ._project import Project

__all__ = ["check", "name_problems", "validate"]

_Add = Callable[[Problem], None]

_KNOWN = {t.value for t in ComponentType}
_NO_FLOW = {ComponentType.SOURCE.value, ComponentType.VIEWER.value, ComponentType.STORAGE.value}
_TASKLIKE = {"task", "stepjobTask", "bulkjobTask"}
_LOOPS = {"for", "foreach", "while"}
_JOBS = {"stepjob", "stepjobTask", "bulkjobTask"}
#: a TCS dependency statement: sd=<ec|pc><op><value>[:[deletetype][:stepno[:stepno...]]]
_DEPENDENCY = re.compile(
    r"sd=(?:ec|pc)(?:==|!=|<=|>=|<|>)[0-9][0-9,\-]*(?::(?:one|after|all)?(?::[0-9]+)*)?"
)


def _file(c: Component) -> str:
    return f"{c.rel}/{COMPONENT_FILE}" if c.rel else COMPONENT_FILE


def check(
    project: Project,
    *,
    hosts: Collection[str] = (),
    supported_types: Collection[str] | None = None,
    step_hosts: Collection[str] | None = None,
    bulk_hosts: Collection[str] | None = None,
) -> list[Problem]:
    """All problems found in ``project`` (an empty list for a valid project).

    ``step_hosts`` / ``bulk_hosts``: the hosts whose scheduler (and ``useStepjob`` /
    ``useBulkjob``) allow step and bulk jobs; None skips that check.

    The problems found when the files were loaded (a field of the wrong type) come first; the
    other checks see such a field as absent, and do not report it again.
    """
    bad: dict[str, set[str]] = {}
    for p in project.load_problems:
        bad.setdefault(p.file, set()).add(re.split(r"[.\[]", p.field, maxsplit=1)[0])
    masked: list[tuple[Component, dict[str, Any]]] = []
    for c in project.root_component.walk():
        keys = bad.get(_file(c))
        if keys:
            masked.append((c, c.data))
            c.data = {k: v for k, v in c.data.items() if k not in keys}  # in memory only
    try:
        return _check_all(project, hosts, supported_types, step_hosts, bulk_hosts)
    finally:
        for c, data in masked:
            c.data = data


def _check_all(
    project: Project,
    hosts: Collection[str],
    supported_types: Collection[str] | None,
    step_hosts: Collection[str] | None,
    bulk_hosts: Collection[str] | None,
) -> list[Problem]:
    problems = list(project.load_problems)
    loaded = {(p.file, p.field) for p in project.load_problems}

    def add(problem: Problem) -> None:
        if (problem.file, problem.field) not in loaded:  # the type problem says it already
            problems.append(problem)

    known_hosts = {LOCALHOST, *hosts}
    bounds = project_bounds(project)
    seen_ids: dict[str, Component] = {}
    for c in project.root_component.walk():
        f = _file(c)
        if not c.id:
            add(Problem(f, "ID", "is missing; every component needs a unique ID"))
        elif c.id in seen_ids:
            add(
                Problem(
                    f,
                    "ID",
                    f"{c.id!r} is also the ID of {seen_ids[c.id].rel or 'root'}; give it a new one",
                )
            )
        else:
            seen_ids[c.id] = c
        if c.type not in _KNOWN:
            kinds = ", ".join(sorted(_KNOWN))
            add(Problem(f, "type", f"unknown component type {c.type!r}; use one of: {kinds}"))
            continue
        if supported_types is not None and c.type not in supported_types:
            add(
                Problem(
                    f,
                    "type",
                    f"component type {c.type!r} is not supported by this version of sharin "
                    "(supported: " + ", ".join(sorted(supported_types)) + ")",
                )
            )
        if c.parent is not None:
            if not is_valid_name(c.name):
                add(Problem(f, "name", f"{c.name!r} may use only letters, digits, '_' and '-'"))
            elif c.name != c.directory.name:
                add(
                    Problem(
                        f,
                        "name",
                        f"is {c.name!r} but the directory is {c.directory.name!r}; make them equal",
                    )
                )
        names: dict[str, Component] = {}
        for child in c.children:
            if child.name in names:
                add(
                    Problem(
                        _file(child),
                        "name",
                        f"{child.name!r} is used twice in {c.rel or 'the project root'}; rename one",
                    )
                )
            names[child.name] = child
        problems.extend(name_problems(c, bounds))
        if c.type in _TASKLIKE:
            _check_task(c, known_hosts, add)
        else:
            _check_control(c, add)
        if c.type in _JOBS:
            _check_job_model(c, known_hosts, step_hosts, bulk_hosts, add)
    family = {
        id(c): {x.id: x for x in c.children} for c in project.root_component.walk() if c.children
    }
    for c in project.root_component.walk():
        if c.type in _KNOWN:
            _check_edges(project, c, add, family)
    for c in project.root_component.walk():
        if c.children:
            _check_cycles(c, add)
    return problems


def validate(
    project: Project,
    *,
    hosts: Collection[str] = (),
    supported_types: Collection[str] | None = None,
    step_hosts: Collection[str] | None = None,
    bulk_hosts: Collection[str] | None = None,
) -> None:
    """Raise :class:`ValidationError` listing every problem, or return for a valid project."""
    problems = check(
        project,
        hosts=hosts,
        supported_types=supported_types,
        step_hosts=step_hosts,
        bulk_hosts=bulk_hosts,
    )
    if problems:
        raise ValidationError(problems)


def _check_condition(c: Component, key: str, add: _Add, *, required: bool = True) -> None:
    """A condition is a script in the component's directory or a safe expression."""
    f = _file(c)
    cond = c.data.get(key)
    if cond in (None, ""):
        if required:
            add(Problem(f, key, "is not set; give a script name in the directory or an expression"))
        return
    if isinstance(cond, bool):
        return  # retryCondition: true or false
    text = str(cond).strip()
    try:
        if _names_a_file(c.directory, text) and condition_script(c.directory, text) is not None:
            return
    except UnsafePathError:
        return  # a file outside: name_problems reports it
    try:
        parse_expression(text)
    except ExpressionError as e:
        if looks_like_script_name(text):
            add(Problem(f, key, f"{text!r}: no such script in {c.rel}/ (and not an expression)"))
        else:
            add(Problem(f, key, str(e)))


def _names_a_file(directory: Path, text: str) -> bool:
    """True when ``text`` is a file in ``directory``; False for text no file name can be (too
    long a part, a NUL), which the file system would answer with an error."""
    if "\x00" in text or any(len(part.encode()) > 255 for part in text.split("/")):
        return False
    try:
        return (directory / text).is_file()
    except OSError:
        return False


def _check_control(c: Component, add: _Add) -> None:
    f = _file(c)
    t = c.type
    if t in ("if", "while", "break", "continue"):
        _check_condition(c, "condition", add)
    if t in ("break", "continue") and (c.parent is None or c.parent.type not in _LOOPS):
        add(Problem(f, "type", f"a {t} must sit directly inside a for, foreach or while"))
    if t == "for":
        from ._loops import validate_for  # the loop and parameter-study modules: when used

        try:
            validate_for(c.data.get("start"), c.data.get("end"), c.data.get("step"), name=c.name)
        except ProjectError as e:
            add(Problem(f, "start/end/step", str(e)))
    if t == "foreach":
        from ._loops import foreach_items

        try:
            foreach_items(c.data.get("indexList"), name=c.name)
        except ProjectError as e:
            add(Problem(f, "indexList", str(e)))
    if t in _LOOPS or t == "parameterStudy":
        keep = c.data.get("keep")
        if keep not in (None, "") and (
            isinstance(keep, bool) or not isinstance(keep, int) or keep < 0
        ):
            add(Problem(f, "keep", f"{keep!r} is not a whole number ≥ 0 (or empty to keep all)"))
    if t == "parameterStudy":
        _check_parameter_file(c, add, study=True)
    if t == "source":
        outs = c.data.get("outputFiles") or []
        if len(outs) != 1 or not isinstance(outs[0], dict) or not outs[0].get("name"):
            add(Problem(f, "outputFiles", "a source has exactly one output file with a name"))
    if t == "storage":
        raw = c.data.get("storagePath")
        if not raw:
            add(Problem(f, "storagePath", "is not set; give a directory on this machine"))
        elif not str(raw).startswith(("/", "~")):
            add(Problem(f, "storagePath", f"{raw!r} must be an absolute path"))
    if t in ("hpciss", "hpcisstar"):
        add(
            Problem(
                f,
                "type",
                f"{t} (HPCI shared storage through Gfarm) is not supported by sharin; "
                "use a storage component or a task that runs gfcp/gfptar",
            )
        )


def _check_job_model(
    c: Component,
    known_hosts: set[str],
    step_hosts: Collection[str] | None,
    bulk_hosts: Collection[str] | None,
    add: _Add,
) -> None:
    """Step jobs and bulk jobs: where they may sit and which hosts can run them."""
    f = _file(c)
    t = c.type
    if t == "stepjob":
        for child in c.children:
            if child.type != "stepjobTask":
                add(
                    Problem(
                        _file(child),
                        "type",
                        f"a stepjob holds only stepjobTask components, not a {child.type}; "
                        "move it out of the stepjob",
                    )
                )
        host = c.host
        if host == LOCALHOST or host not in known_hosts:
            add(
                Problem(
                    f,
                    "host",
                    f"{host!r}: a stepjob runs on a host from remotehost.json whose "
                    "jobScheduler supports step jobs (Fugaku, TCS, SLURM, PBSPro, SGE, UGE, "
                    "LSF); set host",
                )
            )
        elif step_hosts is not None and host not in step_hosts:
            add(
                Problem(
                    f,
                    "host",
                    f"host {host!r} cannot run step jobs: its jobScheduler must support them "
                    'and its remotehost.json entry needs "useStepjob": true',
                )
            )
        if c.data.get("useJobScheduler") is False:
            add(Problem(f, "useJobScheduler", "a stepjob always uses the job scheduler; set true"))
    if t == "stepjobTask":
        if c.parent is None or c.parent.type != "stepjob":
            add(Problem(f, "type", "a stepjobTask must sit directly inside a stepjob"))
        form = c.data.get("dependencyForm")
        if c.data.get("useDependency"):
            if not form or not _DEPENDENCY.fullmatch(str(form).strip()):
                add(
                    Problem(
                        f,
                        "dependencyForm",
                        f"{form!r} is not a dependency statement; write e.g. sd=ec!=0:all "
                        "(sd=<ec|pc><op><value>[:one|after|all[:step numbers]])",
                    )
                )
        if c.retry:
            add(
                Problem(
                    f,
                    "retry",
                    "a step of a step job cannot be submitted again (the step job runs each step "
                    "once); set retry to 0, and use a dependency statement to react to failures",
                )
            )
        for inp in c.input_files:
            for link in inp.src:
                sibs = {x.id: x for x in c.parent.children} if c.parent is not None else {}
                src = sibs.get(link.node)
                if src is not None and src.type == "stepjobTask":
                    add(
                        Problem(
                            f,
                            f"inputFiles[{inp.name}]",
                            f"files cannot pass between the steps of a step job ({src.name} → "
                            f"{c.name}); give the file to the stepjob and take it from there",
                        )
                    )
    if t == "bulkjobTask":
        host = c.host
        if host != LOCALHOST and host in known_hosts:
            if bulk_hosts is not None and host not in bulk_hosts:
                add(
                    Problem(
                        f,
                        "host",
                        f"host {host!r} cannot run bulk jobs: its jobScheduler must support "
                        'them and its remotehost.json entry needs "useBulkjob": true',
                    )
                )
        elif host == LOCALHOST and not c.use_job_scheduler:
            add(
                Problem(
                    f,
                    "host",
                    "a bulkjobTask runs on a host from remotehost.json whose jobScheduler "
                    "supports bulk jobs (Fugaku, SLURM, PBSPro, SGE, UGE, LSF); set host",
                )
            )
        if host != LOCALHOST and not c.use_job_scheduler:
            add(Problem(f, "useJobScheduler", "a bulkjobTask is a batch job; set true"))
        if c.data.get("usePSSettingFile", True):
            _check_parameter_file(c, add, study=False)
        else:
            try:
                start = int(c.data.get("startBulkNumber"))  # type: ignore[arg-type]
                end = int(c.data.get("endBulkNumber"))  # type: ignore[arg-type]
                if start < 0 or end < start:
                    raise ValueError
            except (TypeError, ValueError):
                add(
                    Problem(
                        f,
                        "startBulkNumber/endBulkNumber",
                        "must be whole numbers with 0 ≤ start ≤ end "
                        "(or set usePSSettingFile and give a parameterSetting.json)",
                    )
                )
        if c.data.get("manualFinishCondition"):
            _check_condition(c, "condition", add)


def _check_task(c: Component, known_hosts: set[str], add: _Add) -> None:
    f = _file(c)
    for problem in task_field_problems(c):  # OPEN-WHEEL 2025: sourceScript, checker, mandatory
        add(problem)
    script = c.data.get("script")
    if not script:
        add(
            Problem(
                f,
                "script",
                "no script is set; `sharin set` the task's script to a file in its directory",
            )
        )
    elif name_problem(str(script)) is None:  # an unsafe name: name_problems reports it
        path = c.directory / str(script)
        if not path.is_file():
            add(
                Problem(
                    f,
                    "script",
                    f"{script!r} does not exist in {c.rel}/; create it or set script to an existing file",
                )
            )
    host = c.host
    if c.type == "stepjobTask":
        host = LOCALHOST  # a step runs where its stepjob says (checked there)
    if host not in known_hosts:
        listed = ", ".join(sorted(known_hosts))
        add(
            Problem(
                f,
                "host",
                f"unknown host {host!r} (known: {listed}); add it to remotehost.json or use localhost",
            )
        )
    _check_condition(c, "retryCondition", add, required=False)
    if host == LOCALHOST and c.use_job_scheduler and c.type != "stepjobTask":
        add(
            Problem(
                f,
                "useJobScheduler",
                "a job scheduler needs a host defined in remotehost.json with a jobScheduler "
                '(this machine\'s own scheduler: an entry with "transport": "local"); '
                "set host, or set useJobScheduler to false",
            )
        )


def _check_edges(
    project: Project, c: Component, add: _Add, family: dict[int, dict[str, Component]]
) -> None:
    f = _file(c)
    sibs = family.get(id(c.parent), {}) if c.parent is not None else {}
    for key in ("previous", "next", "else"):
        ids = c.data.get(key)
        if ids in (None, []):
            continue
        if not isinstance(ids, list):
            add(Problem(f, key, "must be a list of component IDs"))
            continue
        if ids and c.type in _NO_FLOW:
            add(
                Problem(f, key, f"a {c.type} component takes file edges only; remove the flow edge")
            )
        for i in ids:
            if i not in sibs or i == c.id:
                other = project.by_id.get(str(i))
                where = f" ({other.rel} is not a sibling)" if other else ""
                add(
                    Problem(f, key, f"refers to unknown component ID {i!r}{where}; remove the edge")
                )
    for inp in c.input_files:
        field = f"inputFiles[{inp.name}]"
        if len(inp.src) > 1 and not inp.name.endswith("/"):
            add(
                Problem(
                    f,
                    field,
                    "receives files from several outputs, so its name must end with '/' (a directory)",
                )
            )
        for link in inp.src:
            src = project.by_id.get(link.node)
            if src is None:
                add(
                    Problem(
                        f, field, f"comes from unknown component ID {link.node!r}; remove the edge"
                    )
                )
                continue
            if src is c.parent:
                if not any(x.name == link.name for x in src.input_files):
                    add(
                        Problem(
                            f,
                            field,
                            f"comes from {src.rel or 'root'}'s input {link.name!r}, which it does not have",
                        )
                    )
            elif src.parent is c.parent:
                if not any(o.name == link.name for o in src.output_files):
                    add(
                        Problem(
                            f,
                            field,
                            f"comes from {src.rel}'s output {link.name!r}, but {src.rel} produces no such "
                            "file; add it to its outputFiles or fix the edge",
                        )
                    )
            else:
                add(
                    Problem(
                        f, field, f"comes from {src.rel}, which is neither a sibling nor the parent"
                    )
                )
    for out in c.output_files:
        for link in out.dst:
            if link.node and link.node not in project.by_id:
                add(
                    Problem(
                        f,
                        f"outputFiles[{out.name}]",
                        f"goes to unknown component ID {link.node!r}; remove the edge",
                    )
                )


def project_bounds(project: Project) -> Bounds:
    """The project's directory and the storage paths its storage components name."""
    named = [
        str(c.data["storagePath"])
        for c in project.root_component.walk()
        if c.type == "storage"
        and isinstance(c.data.get("storagePath"), str)
        and str(c.data["storagePath"]).startswith(("/", "~"))
    ]
    return Bounds.of(project.root, named)


def _check_parameter_file(c: Component, add: _Add, *, study: bool) -> None:
    """Read a parameter study's (or bulk job's) parameter file, and check its target files,
    scatter and gather against the directory (problems name that file)."""
    from ._paramstudy import (
        PARAMETER_FILE,
        check_instance_names,
        load_parameter_setting,
        setting_problems,
    )

    f = _file(c)
    name = str(c.data.get("parameterFile") or PARAMETER_FILE)
    if name_problem(name) is not None:
        return  # name_problems reports it
    path = c.directory / name
    try:
        check_real(
            path,
            Bounds.of(find_root(c.directory)),
            what="parameter file",
            shown=name,
            named_ok=False,
        )
    except UnsafePathError as e:
        add(Problem(f, "parameterFile", str(e)))
        return
    try:
        setting = load_parameter_setting(path)
    except ProjectError as e:
        add(Problem(f, "parameterFile", str(e)))
        return
    # a bulk job renders its targets in its own directory, as a study does
    node_dirs = {x.id: x.rel[len(c.rel) + 1 :] for x in c.walk()[1:]} if study else {}
    pfile = f"{c.rel}/{name}" if c.rel else name
    for field, message in setting_problems(setting, c.directory, node_dirs):
        add(Problem(pfile, field, message))
    if study:
        try:
            check_instance_names(setting, c.name)
        except ProjectError as e:
            add(Problem(f, "parameterFile", str(e)))


def _deps(c: Component, ids: set[str]) -> Iterable[str]:
    for i in c.previous:
        if i in ids:
            yield i
    for inp in c.input_files:
        for link in inp.src:
            if link.node in ids:
                yield link.node


def _check_cycles(parent: Component, add: _Add) -> None:
    children = {c.id: c for c in parent.children}
    ids = set(children)
    graph = {cid: sorted(set(_deps(c, ids))) for cid, c in children.items()}
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    for start in graph:
        if color[start] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, idx = stack.pop()
            if idx == 0:
                color[node] = GREY
                path.append(node)
            deps = graph[node]
            if idx < len(deps):
                stack.append((node, idx + 1))
                nxt = deps[idx]
                if color[nxt] == GREY:
                    cyc = path[path.index(nxt) :] + [nxt]
                    names = " → ".join(children[x].name for x in reversed(cyc))
                    first = children[nxt]
                    add(
                        Problem(
                            _file(first),
                            "previous",
                            f"dependency cycle {names}; remove one of these edges",
                        )
                    )
                    return
                if color[nxt] == WHITE:
                    stack.append((nxt, 0))
            else:
                color[node] = BLACK
                path.pop()
