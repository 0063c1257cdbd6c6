"""The names a component's ``cmp.wheel.json`` gives (its script, condition scripts, parameter
file, patterns and file edges) that would reach outside its directory or the project.

Validation lists these problems, and edits refuse a change that brings a new one."""

from __future__ import annotations

from ..errors import Problem
from ._component import COMPONENT_FILE, STATUS_FILE, Component
from ._expr import ExpressionError, parse_expression
from ._paths import Bounds, UnsafePathError, check_real, condition_script, find_root, name_problem

__all__ = ["CONDITION_KEYS", "name_problems"]

_TASKLIKE = {"task", "stepjobTask", "bulkjobTask"}


def _file(c: Component) -> str:
    return f"{c.rel}/{COMPONENT_FILE}" if c.rel else COMPONENT_FILE


#: keys whose value, when it names a file in the component's directory, is a script to run
CONDITION_KEYS = ("condition", "retryCondition", "checker")


def name_problems(c: Component, bounds: Bounds | None = None) -> list[Problem]:
    """Every name in ``c``'s ``cmp.wheel.json`` that would reach outside its directory or,
    through a symbolic link, outside the project (``bounds``): the script, the condition
    scripts, the parameter file, include/exclude patterns, and the names of the file edges.

    Only what is unsafe is reported here (a missing script is another check's business), so
    edits can refuse exactly that.
    """
    f = _file(c)
    out: list[Problem] = []
    inside = bounds or Bounds.of(find_root(c.directory))

    def name(field: str, what: str, value: object, *, empty_ok: bool = False) -> bool:
        problem = name_problem(value, empty_ok=empty_ok)
        if problem is not None:
            out.append(Problem(f, field, f"{what} {_shown(value)} {problem}"))
        return problem is None

    def real(field: str, what: str, value: str, *, follow: bool = True) -> None:
        try:
            check_real(
                c.directory / value, inside, what=what, shown=value, follow=follow, named_ok=False
            )
        except UnsafePathError as e:
            out.append(Problem(f, field, str(e)))

    script = c.data.get("script")
    if c.type in _TASKLIKE and script not in (None, ""):
        if name("script", "script", script):
            real("script", "script", str(script))
    for key in CONDITION_KEYS:
        cond = c.data.get(key)
        if isinstance(cond, str) and cond.strip():
            try:
                condition_script(c.directory, cond, inside)
            except UnsafePathError as e:
                out.append(Problem(f, key, str(e)))
                continue
            problem = name_problem(cond.strip())
            if problem is not None and not _is_expression(cond):
                out.append(Problem(f, key, f"condition script {_shown(cond.strip())} {problem}"))
    if c.type in ("parameterStudy", "bulkjobTask"):
        pfile = c.data.get("parameterFile")
        if pfile not in (None, ""):
            name("parameterFile", "parameter file", pfile)  # its link: _check_parameter_file
    for key, patterns in (("include", c.include), ("exclude", c.exclude)):
        for pattern in patterns:
            name(key, "pattern", pattern)
    for inp in c.input_files:
        field = f"inputFiles[{inp.name}]"
        if inp.name in (COMPONENT_FILE, STATUS_FILE) or (script and inp.name == script):
            out.append(
                Problem(
                    f,
                    field,
                    f"{inp.name!r} is the component's own file (its JSON, status or script), "
                    "which a delivery may not replace; give the input another name",
                )
            )
        elif name(field, "input name", inp.name, empty_ok=True) and inp.name:
            # a file is replaced by its delivery, a directory receives files: followed
            into = inp.name.endswith(("/", "\\"))
            real(field, "input name", inp.name.rstrip("/\\") or ".", follow=into)
        for link in inp.src:
            name(field, "source name", link.name, empty_ok=True)
        for link in inp.forward_to:
            name(field, "forwarded name", link.name, empty_ok=True)
    for outf in c.output_files:
        field = f"outputFiles[{outf.name}]"
        name(field, "output name", outf.name, empty_ok=True)
        for link in outf.dst:
            name(field, "destination name", link.name, empty_ok=True)
        for link in outf.origin:
            name(field, "origin name", link.name, empty_ok=True)
    return out


def _is_expression(text: str) -> bool:
    try:
        parse_expression(text.strip())
    except ExpressionError:
        return False
    return True


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + "…" + text[-10:]
