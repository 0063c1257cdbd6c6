"""Parameter study: reading ``parameterSetting.json`` (version 2) and expanding it, lazily.

What WHEEL does (``server/app/core/parameterParser.js``, ``psUtils.js`` and ``_PSHandler`` in
``dispatcher.js`` of OPEN-WHEEL), and what this module does differently:

* **Axes.** ``{"keyword", "min", "max", "step"}``, ``{"keyword", "list"}`` or
  ``{"keyword", "files"}`` (glob patterns, expanded in the PS directory when the study starts;
  only paths that exist count). WHEEL's editor also writes ``"type": "min-max-step" | "list" |
  "files"`` and may leave stale fields of another type behind; when ``type`` is given it decides.
* **Values are strings.** A range value is ``min + k*step``; an integral value is written without
  decimals (``1``, not ``1.0``) and any other value with as many decimals as the most precise of
  min, max and step (``0.30`` for 0.15/0.45/0.15). WHEEL computes with floats, so some ranges
  lose their last value (``0 .. 0.29 step 0.01`` gives 29 values there) and tiny steps format as
  ``0``; here the arithmetic is exact decimal arithmetic. A negative step runs from ``min`` down
  to ``max``. List items keep their text; JSON numbers are written as JavaScript writes them.
* **Order.** The product is enumerated with the *first* axis varying fastest, as WHEEL does.
* **Names.** An instance directory is ``sanitize(<ps name>_<k1>_<v1>_<k2>_<v2>...)``: each of
  ``/ \\ * ? [ ] { } ( ) ! + @ . ~ =`` becomes ``_`` and one trailing ``_`` is dropped
  (``pathUtils.sanitizePath``). Values that would give two instances the same directory are
  rejected here (WHEEL silently runs both in one directory).
* **Templates.** Target files and scatter/gather names are rendered with ``{{ keyword }}``
  (Jinja2 here, nunjucks in WHEEL: the same syntax for variables, filters and ``x if c else y``).
  WHEEL turns on HTML autoescaping, which corrupts values holding ``< > & " '``; here it is off.
  An unknown name is an error naming the file, where nunjucks renders it as an empty string.
* **Errors.** WHEEL drops an invalid axis silently; here every problem in the file is a
  :class:`~sharin.errors.ProjectError` naming the file and the field (``params[1].step``).
"""

from __future__ import annotations

import codecs
import functools
import glob
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NamedTuple, TypeAlias

from ..errors import ProjectError
from ._expr import to_js_string
from ._jsonio import read_json_object, show_json
from ._paths import Bounds, UnsafePathError, check_real, find_root, name_problem

if TYPE_CHECKING:  # jinja2 is imported when a template is first rendered (start-up time)
    import jinja2

__all__ = [
    "PARAMETER_FILE",
    "Axis",
    "FileRule",
    "FilesAxis",
    "GatherRule",
    "ListAxis",
    "ParamSpace",
    "ParamValue",
    "ParamVector",
    "ParameterSetting",
    "RangeAxis",
    "ScatterRule",
    "TargetFile",
    "copy_exclusions",
    "copy_pairs",
    "count_vectors",
    "expand_space",
    "check_instance_names",
    "instance_env",
    "instance_name",
    "iterate_vectors",
    "load_parameter_setting",
    "parse_parameter_setting",
    "render_template",
    "resolve_gather",
    "resolve_scatter",
    "sanitize_path",
    "setting_problems",
]

#: WHEEL's default name for a PS component's parameter file.
PARAMETER_FILE: Final = "parameterSetting.json"

_COMPONENT_FILE: Final = "cmp.wheel.json"

AxisKind: TypeAlias = Literal["min-max-step", "list", "files"]

# ---------------------------------------------------------------------------------------------
# Names


_SANITIZED_CHARS: Final = frozenset("/\\*?[]{}()!+@.~=")
_RE_WIN32_RESERVED: Final = re.compile(r"^(CON|PRN|AUX|NUL|CLOCK\$|COM[0-9]|LPT[0-9])\..*$", re.I)


def _replace_chars(text: str, replacer: str) -> str:
    return "".join(replacer if ch in _SANITIZED_CHARS else ch for ch in text)


def sanitize_path(text: str, replacer: str = "_") -> str:
    """WHEEL's ``sanitizePath``: make ``text`` usable as one directory name.

    Each of ``/ \\ * ? [ ] { } ( ) ! + @ . ~ =`` becomes ``replacer``; then a Windows reserved
    name with an extension (``AUX.txt``) becomes ``replacer`` (never the case any more once the
    dots are gone, as in WHEEL); then *one* trailing ``replacer`` is removed. Other characters,
    spaces and ``:`` included, are kept.
    """
    sanitized = _replace_chars(text, replacer)
    sanitized = _RE_WIN32_RESERVED.sub(replacer, sanitized)
    if replacer and sanitized.endswith(replacer):
        sanitized = sanitized[: -len(replacer)]
    return sanitized


# ---------------------------------------------------------------------------------------------
# The parameter file


@dataclass(frozen=True)
class TargetFile:
    """A file rendered for every instance: ``name`` relative to the PS directory, or to the
    directory of component ``node`` (a component ID below the PS) when ``node`` is set."""

    name: str
    node: str | None = None

    def path(self, node_dirs: Mapping[str, str] | None = None) -> str:
        """The path relative to the PS directory; ``node_dirs`` maps component IDs to their
        directories relative to the PS directory."""
        if self.node is None:
            return _posix(self.name)
        if node_dirs is None or self.node not in node_dirs:
            raise ProjectError(
                f"target file {self.name!r} belongs to component {self.node!r}, "
                "which is not below the parameter study"
            )
        return _posix(str(PurePosixPath(node_dirs[self.node], self.name)))


@dataclass(frozen=True)
class RangeAxis:
    """``min .. max`` (inclusive) by ``step``, computed exactly in decimal."""

    keyword: str
    min: Decimal
    max: Decimal
    step: Decimal
    field: str = ""  #: where the axis is in the file, e.g. ``params[0]``

    kind: ClassVar[AxisKind] = "min-max-step"

    @functools.cached_property
    def _scaled(self) -> tuple[int, int, int, int]:
        digits = max(_decimals(self.min), _decimals(self.max), _decimals(self.step))
        lo, hi, step = (_scaled_int(v, digits) for v in (self.min, self.max, self.step))
        return digits, lo, hi, step

    @property
    def digits(self) -> int:
        """Decimals written for a value that is not integral."""
        return self._scaled[0]

    @property
    def size(self) -> int:
        _, lo, hi, step = self._scaled
        return (hi - lo) // step + 1

    def value(self, i: int) -> str:
        digits, lo, _, step = self._scaled
        return _format_scaled(lo + step * i, digits)


@dataclass(frozen=True)
class ListAxis:
    """Explicit values, as text."""

    keyword: str
    values: tuple[str, ...]
    field: str = ""

    kind: ClassVar[AxisKind] = "list"

    @property
    def size(self) -> int:
        return len(self.values)

    def value(self, i: int) -> str:
        return self.values[i]


@dataclass(frozen=True)
class FilesAxis:
    """Glob patterns, expanded in the PS directory by :meth:`expand`."""

    keyword: str
    patterns: tuple[str, ...]
    field: str = ""

    kind: ClassVar[AxisKind] = "files"

    def expand(
        self, template_dir: Path, *, source: Path | None = None, last: bool = False
    ) -> tuple[str, ...]:
        """Existing paths matching the patterns, relative to ``template_dir``, sorted per pattern,
        without duplicates. Hidden files match only a pattern that names the dot."""
        found: dict[str, None] = {}
        for pattern in self.patterns:
            for match in sorted(glob.glob(pattern, root_dir=template_dir, recursive=True)):
                found.setdefault(_posix(match), None)
        if not found:
            raise ProjectError(
                f"{self.field}.files: no file in {template_dir} matches "
                + ", ".join(repr(p) for p in self.patterns)
                + "; add the files or fix the patterns",
                path=source,
            )
        values = tuple(found)
        _check_distinct_names(values, f"{self.field}.files", source, last=last)
        return values


Axis: TypeAlias = RangeAxis | ListAxis | FilesAxis


@dataclass(frozen=True)
class ScatterRule:
    """Copy ``src_name`` (a glob in the PS directory) into every instance, as ``dst_name``
    below the instance or below component ``dst_node`` in it. Both names may use ``{{ }}``."""

    src_name: str
    dst_name: str
    dst_node: str | None = None


@dataclass(frozen=True)
class GatherRule:
    """After the study, copy ``src_name`` (a glob in each instance, or below component
    ``src_node`` in it) back into the PS directory as ``dst_name``."""

    src_name: str
    dst_name: str
    src_node: str | None = None


@dataclass(frozen=True)
class ParameterSetting:
    """A parsed version-2 parameter file."""

    path: Path
    target_files: tuple[TargetFile, ...]
    params: tuple[Axis, ...]
    scatter: tuple[ScatterRule, ...] = ()
    gather: tuple[GatherRule, ...] = ()

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(axis.keyword for axis in self.params)


def load_parameter_setting(path: Path | str) -> ParameterSetting:
    """Read and check a parameter file; every problem is a :class:`ProjectError` naming it."""
    path = Path(path)
    return parse_parameter_setting(read_json_object(path), path)


_Fail: TypeAlias = Callable[[str, str], ProjectError]

_RE_KEYWORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TEMPLATE_WORDS: Final = frozenset(
    "and or not in is if else elif for endfor true false none True False None "
    "block extends import include macro set with without recursive loop self".split()
)
_AXIS_TYPES: Final[Mapping[str, AxisKind]] = {
    "min-max-step": "min-max-step",
    "integer": "min-max-step",
    "float": "min-max-step",
    "list": "list",
    "string": "list",
    "files": "files",
    "file": "files",
}


def parse_parameter_setting(data: Mapping[str, Any], path: Path | str) -> ParameterSetting:
    """Check the JSON object of a parameter file read from ``path`` (used in messages)."""
    path = Path(path)

    def fail(where: str, message: str) -> ProjectError:
        return ProjectError(f"{where}: {message}" if where else message, path=path)

    version = data.get("version")
    if version is None:
        raise fail("version", 'missing; a parameter file must start with "version": 2')
    if _is_number(version) and version == 1:
        raise fail(
            "version",
            "PS version 1 (%%KEY%% placeholders) is no longer supported, as in WHEEL; "
            'write it as version 2 with {{ KEY }} placeholders and "version": 2',
        )
    if not (_is_number(version) and version == 2):
        raise fail("version", f"must be 2, found {show_json(version)}")

    target_key = "targetFiles" if "targetFiles" in data else "target_file"
    raw_targets = data.get(target_key, [])
    if isinstance(raw_targets, str):
        raw_targets = [raw_targets]
    if not isinstance(raw_targets, list):
        raise fail(target_key, f"must be a list of file names, found {_kind(raw_targets)}")
    targets: list[TargetFile] = []
    for i, item in enumerate(raw_targets):
        where = f"{target_key}[{i}]"
        if isinstance(item, str):
            targets.append(TargetFile(_relative_name(item, where, fail)))
            continue
        if not isinstance(item, dict):
            raise fail(where, f"must be a file name or an object, found {_kind(item)}")
        name = _string_field(item, "targetName", where, fail)
        node = _optional_string(item, "targetNode", where, fail)
        targets.append(TargetFile(_relative_name(name, f"{where}.targetName", fail), node))

    params_key = "params" if "params" in data else "target_param"
    raw_params = data.get(params_key)
    if raw_params is None:
        raise fail("params", "missing; list the parameters to vary")
    if not isinstance(raw_params, list):
        raise fail(params_key, f"must be a list, found {_kind(raw_params)}")
    if not raw_params:
        raise fail(params_key, "is empty; define at least one parameter")
    axes: list[Axis] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw_params):
        axis = _parse_axis(item, f"{params_key}[{i}]", fail, last=i == len(raw_params) - 1)
        if axis.keyword in seen:
            raise fail(
                f"{params_key}[{i}].keyword",
                f"{axis.keyword!r} is already the keyword of {seen[axis.keyword]}",
            )
        seen[axis.keyword] = f"{params_key}[{i}]"
        axes.append(axis)

    scatter = tuple(
        ScatterRule(*_parse_rule(item, f"scatter[{i}]", "dstNode", fail))
        for i, item in enumerate(_list_field(data, "scatter", fail))
    )
    gather = tuple(
        GatherRule(*_parse_rule(item, f"gather[{i}]", "srcNode", fail))
        for i, item in enumerate(_list_field(data, "gather", fail))
    )
    return ParameterSetting(path, tuple(targets), tuple(axes), scatter, gather)


def _parse_axis(item: object, where: str, fail: _Fail, *, last: bool) -> Axis:
    if not isinstance(item, dict):
        raise fail(where, f"must be an object with a keyword, found {_kind(item)}")
    keyword = _string_field(item, "keyword", where, fail)
    if not _RE_KEYWORD.fullmatch(keyword) or keyword in _TEMPLATE_WORDS:
        raise fail(
            f"{where}.keyword",
            f"{keyword!r} cannot be used as a placeholder name: use letters, digits and _, "
            "not starting with a digit, and not a template word such as 'if' or 'none'",
        )
    kind: AxisKind | None
    declared = item.get("type")
    if declared is not None:
        if not isinstance(declared, str) or declared not in _AXIS_TYPES:
            raise fail(
                f"{where}.type",
                f"unknown type {show_json(declared)}; use 'min-max-step', 'list' or 'files'",
            )
        kind = _AXIS_TYPES[declared]
    elif all(_given(item.get(k)) for k in ("min", "max", "step")):
        kind = "min-max-step"
    elif _given(item.get("list")):
        kind = "list"
    elif _given(item.get("files")):
        kind = "files"
    else:
        partial = [k for k in ("min", "max", "step") if _given(item.get(k))]
        if partial:
            missing = [k for k in ("min", "max", "step") if k not in partial]
            raise fail(where, f"has {', '.join(partial)} but no {', '.join(missing)}")
        raise fail(where, "needs min, max and step, or list, or files")

    if kind == "min-max-step":
        return _parse_range(item, keyword, where, fail)
    key = "list" if kind == "list" else "files"
    raw = item.get(key)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise fail(f"{where}.{key}", f"must be a list, found {_kind(raw)}")
    if not raw:
        raise fail(f"{where}.{key}", "is empty; give at least one value")
    if kind == "list":
        values = tuple(_list_value(v, f"{where}.list[{j}]", fail) for j, v in enumerate(raw))
        _check_distinct_names(values, f"{where}.list", None, last=last, fail=fail)
        return ListAxis(keyword, values, where)
    patterns: list[str] = []
    for j, pattern in enumerate(raw):
        if not isinstance(pattern, str) or not pattern:
            raise fail(f"{where}.files[{j}]", f"must be a glob pattern, found {show_json(pattern)}")
        patterns.append(_relative_name(pattern, f"{where}.files[{j}]", fail))
    return FilesAxis(keyword, tuple(patterns), where)


def _parse_range(item: Mapping[str, Any], keyword: str, where: str, fail: _Fail) -> RangeAxis:
    numbers: dict[str, Decimal] = {}
    for key in ("min", "max", "step"):
        value: object = item.get(key)
        if isinstance(value, float) and math.isfinite(value):
            numbers[key] = Decimal(repr(value))  # the shortest writing, as JavaScript prints it
        elif isinstance(value, int) and not isinstance(value, bool):
            numbers[key] = Decimal(value)
        else:
            raise fail(f"{where}.{key}", f"must be a number, found {show_json(value)}")
    lo, hi, step = numbers["min"], numbers["max"], numbers["step"]
    if step == 0:
        raise fail(f"{where}.step", "must not be 0")
    if (hi - lo) * step < 0:
        direction = "smaller" if step > 0 else "larger"
        raise fail(
            f"{where}.step",
            f"is {_fmt(step)} but max ({_fmt(hi)}) is {direction} than min ({_fmt(lo)}), so the "
            "range is empty; swap min and max or change the sign of step",
        )
    return RangeAxis(keyword, lo, hi, step, where)


def _parse_rule(
    item: object, where: str, node_key: str, fail: _Fail
) -> tuple[str, str, str | None]:
    if not isinstance(item, dict):
        raise fail(where, f"must be an object, found {_kind(item)}")
    src = _string_field(item, "srcName", where, fail)
    if not src:
        raise fail(f"{where}.srcName", "is empty")
    _relative_name(src, f"{where}.srcName", fail)
    dst = _string_field(item, "dstName", where, fail)
    _relative_name(dst, f"{where}.dstName", fail, empty_ok=True)
    return src, dst, _optional_string(item, node_key, where, fail)


def _list_field(data: Mapping[str, Any], key: str, fail: _Fail) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(key, f"must be a list, found {_kind(value)}")
    return value


def _string_field(item: Mapping[str, Any], key: str, where: str, fail: _Fail) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise fail(
            f"{where}.{key}",
            "missing" if value is None else f"must be a string, found {_kind(value)}",
        )
    return value


def _optional_string(item: Mapping[str, Any], key: str, where: str, fail: _Fail) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise fail(f"{where}.{key}", f"must be a component ID, found {_kind(value)}")
    return value


def _relative_name(name: str, where: str, fail: _Fail, *, empty_ok: bool = False) -> str:
    if not name and not empty_ok:
        raise fail(where, "is empty")
    posix = name.replace("\\", "/")
    problem = name_problem(name, empty_ok=empty_ok)
    if problem is None and re.match(r"[A-Za-z]:", posix):
        problem = "looks like a Windows drive"
    if problem is not None:
        raise fail(where, f"{name!r} must stay inside the parameter study directory: it {problem}")
    return name


def _list_value(value: object, where: str, fail: _Fail) -> str:
    if isinstance(value, str):
        return value
    if _is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(where, f"must be a finite number, found {value}")
        return to_js_string(value) if isinstance(value, float) else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    raise fail(where, f"must be a string or a number, found {_kind(value)}")


def _check_distinct_names(
    values: Sequence[str],
    where: str,
    source: Path | None,
    *,
    last: bool,
    fail: _Fail | None = None,
) -> None:
    """Two values of one axis must not give the same instance directory name."""
    seen: dict[str, str] = {}
    for value in values:
        key = _replace_chars(value, "_")
        if last and key.endswith("_"):
            key = key[:-1]
        if key in seen:
            same = "appears twice" if seen[key] == value else f"and {seen[key]!r} give"
            message = (
                f"{value!r} {same} the same instance directory name (..._{key}); "
                "WHEEL's sanitizing turns each of / \\ * ? [ ] { } ( ) ! + @ . ~ = into _"
            )
            if fail is not None:
                raise fail(where, message)
            raise ProjectError(f"{where}: {message}", path=source)
        seen[key] = value


def _given(value: object) -> bool:
    return value is not None and value != "" and value != []


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _fmt(value: Decimal) -> str:
    return _format_scaled(_scaled_int(value, _decimals(value)), _decimals(value))


def _split(value: Decimal) -> tuple[int, int]:
    """``(m, e)`` with ``value == m * 10**e`` and ``m`` without trailing zeros, exactly."""
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    mantissa = int("".join(map(str, digit_tuple)) or "0")
    if mantissa == 0:
        return 0, 0
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    return (-mantissa if sign else mantissa), exponent


def _decimals(value: Decimal) -> int:
    """Digits after the decimal point in the shortest writing of ``value`` (``2.50`` -> 1)."""
    return max(0, -_split(value)[1])


def _scaled_int(value: Decimal, digits: int) -> int:
    """``value * 10**digits`` as an exact int (``digits >= _decimals(value)``)."""
    mantissa, exponent = _split(value)
    scaled: int = mantissa * 10 ** (exponent + digits)
    return scaled


def _format_scaled(scaled: int, digits: int) -> str:
    """``scaled / 10**digits`` as WHEEL writes it: no decimals if integral, else ``digits``."""
    whole, frac = divmod(abs(scaled), 10**digits)
    sign = "-" if scaled < 0 else ""
    if frac == 0:
        return f"{sign}{whole}"  # exact, also past 1e21 where JavaScript would write 1e+21
    return f"{sign}{whole}.{frac:0{digits}d}"


def _posix(name: str) -> str:
    return name.replace(os.sep, "/") if os.sep != "/" else name


def setting_problems(
    setting: ParameterSetting,
    ps_dir: Path,
    node_dirs: Mapping[str, str],
    bounds: Bounds | None = None,
) -> list[tuple[str, str]]:
    """``(field, message)`` for what a run of the study would trip over in its files.

    Each target file must exist in ``ps_dir`` (or below its ``targetNode``), lead to a file
    inside the project (``bounds``, by default the project holding ``ps_dir``) and be UTF-8
    text; each ``targetNode``, scatter ``dstNode`` and gather ``srcNode`` must be a component
    below the study (``node_dirs`` maps their IDs to their directories relative to ``ps_dir``).
    The names themselves were checked when the file was read. Reads the target files, writes
    nothing.
    """
    bounds = bounds or Bounds.of(find_root(ps_dir))
    target_key = "targetFiles"
    out: list[tuple[str, str]] = []
    for i, target in enumerate(setting.target_files):
        where = f"{target_key}[{i}]"
        if target.node is not None and target.node not in node_dirs:
            out.append(
                (
                    f"{where}.targetNode",
                    f"{target.node!r} is not the ID of a component inside the parameter study; "
                    "fix targetNode or leave it empty for the study's own directory",
                )
            )
            continue
        rel = target.path(node_dirs)
        path = ps_dir / rel
        try:
            check_real(path, bounds, what="target file", shown=rel, named_ok=False)
        except UnsafePathError as e:
            out.append((where, str(e)))
            continue
        if not path.is_file():
            out.append(
                (
                    where,
                    f"target file {rel!r} does not exist in {ps_dir.name}/; create it "
                    "or remove it from targetFiles",
                )
            )
            continue
        try:
            bad = _not_utf8(path)
        except OSError as e:
            out.append((where, f"target file {rel!r} cannot be read ({e.strerror})"))
            continue
        if bad is not None:
            out.append(
                (
                    where,
                    f"target file {rel!r} is not UTF-8 text (byte 0x{bad[1]:02x} at offset "
                    f"{bad[0]}); save it as UTF-8",
                )
            )
    for kind, rules, node_key in (
        ("scatter", [(r.dst_node) for r in setting.scatter], "dstNode"),
        ("gather", [(r.src_node) for r in setting.gather], "srcNode"),
    ):
        for i, node in enumerate(rules):
            if node is not None and node not in node_dirs:
                out.append(
                    (
                        f"{kind}[{i}].{node_key}",
                        f"{node!r} is not the ID of a component inside the parameter study; "
                        f"fix {node_key} or leave it empty for the instance itself",
                    )
                )
    return out


def _not_utf8(path: Path, chunk: int = 1 << 20) -> tuple[int, int] | None:
    """``(offset, byte)`` of the first byte of ``path`` that is not UTF-8, or None; read in
    chunks, so a large template costs no memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as e:
                return offset + e.start - len(e.object) + len(data), e.object[e.start]
            if not data:
                return None
            offset += len(data)


# ---------------------------------------------------------------------------------------------
# Expansion


@dataclass(frozen=True, slots=True)
class ParamValue:
    """One coordinate of a parameter vector."""

    keyword: str
    value: str
    kind: AxisKind


@dataclass(frozen=True, slots=True)
class ParamVector:
    """One point of the parameter space; ``index`` is its 0-based position in the product."""

    index: int
    values: tuple[ParamValue, ...]

    @property
    def params(self) -> dict[str, str]:
        """``{keyword: value}``, what templates see."""
        return {v.keyword: v.value for v in self.values}

    @property
    def files(self) -> tuple[str, ...]:
        """Values of files axes: paths (relative to the PS directory) this instance gets."""
        return tuple(v.value for v in self.values if v.kind == "files")


class _Column(NamedTuple):
    keyword: str
    kind: AxisKind
    size: int
    value: Callable[[int], str]


class ParamSpace:
    """The parameter space of a setting with its files axes expanded once.

    Iterating yields :class:`ParamVector` one at a time (memory does not grow with the size of
    the product); :attr:`size` is the number of vectors and :meth:`vector` gives the n-th.
    """

    def __init__(self, setting: ParameterSetting, template_dir: Path) -> None:
        self.setting = setting
        self.template_dir = Path(template_dir)
        if not setting.params:
            raise ProjectError("params: no parameter is defined", path=setting.path)
        columns: list[_Column] = []
        for axis in setting.params:
            if isinstance(axis, FilesAxis):
                last = axis is setting.params[-1]
                files = axis.expand(self.template_dir, source=setting.path, last=last)
                columns.append(_Column(axis.keyword, "files", len(files), files.__getitem__))
            else:
                columns.append(_Column(axis.keyword, axis.kind, axis.size, axis.value))
        self._columns = tuple(columns)
        self.size = math.prod(c.size for c in columns)
        self.files = tuple(
            value
            for column in columns
            if column.kind == "files"
            for value in (column.value(i) for i in range(column.size))
        )

    def __len__(self) -> int:
        return self.size

    def vector(self, index: int) -> ParamVector:
        """The ``index``-th vector (first axis fastest), as WHEEL's ``getNthParamVec``."""
        if not 0 <= index < self.size:
            raise IndexError(f"vector {index} is outside 0..{self.size - 1}")
        return self._make(index, self._digits(index))

    def _digits(self, index: int) -> list[int]:
        digits = []
        for column in self._columns:
            index, digit = divmod(index, column.size)
            digits.append(digit)
        return digits

    def _make(self, index: int, digits: Sequence[int]) -> ParamVector:
        return ParamVector(
            index,
            tuple(
                ParamValue(c.keyword, c.value(d), c.kind)
                for c, d in zip(self._columns, digits, strict=True)
            ),
        )

    def __iter__(self) -> Iterator[ParamVector]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[ParamVector]:
        """Vectors from ``start`` (0-based) to the end, computed one at a time."""
        if self.size == 0 or start >= self.size:
            return
        digits = self._digits(max(0, start))
        sizes = [c.size for c in self._columns]
        for index in range(max(0, start), self.size):
            yield self._make(index, digits)
            for position, size in enumerate(sizes):
                digits[position] += 1
                if digits[position] < size:
                    break
                digits[position] = 0


def expand_space(setting: ParameterSetting, template_dir: Path | str) -> ParamSpace:
    """Expand the files axes in ``template_dir`` (the PS directory) and return the space."""
    return ParamSpace(setting, Path(template_dir))


def iterate_vectors(
    setting: ParameterSetting, template_dir: Path | str, *, start: int = 0
) -> Iterator[ParamVector]:
    """Every vector of the full Cartesian product, lazily, first axis fastest.

    Files axes are expanded (and their problems raised) when this is called, not at the first
    ``next()``. ``start`` skips the first vectors (to resume).
    """
    return expand_space(setting, template_dir).iterate(start)


def count_vectors(setting: ParameterSetting, template_dir: Path | str) -> int:
    """How many instances the study has (the product of the axis sizes)."""
    return expand_space(setting, template_dir).size


def instance_name(ps_name: str, vector: ParamVector) -> str:
    """The instance directory name: ``sanitize(<ps_name>_<k1>_<v1>_<k2>_<v2>...)`` as WHEEL."""
    return sanitize_path(ps_name + "".join(f"_{v.keyword}_{v.value}" for v in vector.values))


#: the longest file name (bytes) of the usual file systems
NAME_MAX: Final = 255


def check_instance_names(setting: ParameterSetting, ps_name: str) -> None:
    """Raise a ProjectError when the longest values of the range and list axes would make an
    instance directory name longer than a file name may be (files axes are known only when
    the study starts)."""
    longest = len(ps_name.encode())
    for axis in setting.params:
        if isinstance(axis, FilesAxis):
            continue
        ends = (axis.value(0), axis.value(axis.size - 1))
        values = axis.values if isinstance(axis, ListAxis) else ends
        longest += len(f"_{axis.keyword}_".encode()) + max(len(v.encode()) for v in values)
    if longest > NAME_MAX:
        raise ProjectError(
            f"the longest values make instance directory names of {longest:,} bytes, longer "
            f"than the {NAME_MAX} a file name may have; shorten the values or the keywords",
            path=setting.path,
        )


def instance_env(vector: ParamVector) -> dict[str, str]:
    """``WHEEL_PS_PARAM_<keyword>=<value>`` for each parameter, as OPEN-WHEEL exports them."""
    return {f"WHEEL_PS_PARAM_{v.keyword}": v.value for v in vector.values}


# ---------------------------------------------------------------------------------------------
# Templates


@functools.cache
def _environment(newline: Literal["\n", "\r\n"]) -> jinja2.Environment:
    import jinja2
    import jinja2.sandbox

    return jinja2.sandbox.ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        newline_sequence=newline,
    )


@functools.lru_cache(maxsize=32)
def _compile(text: str) -> jinja2.Template:
    return _environment("\r\n" if "\r\n" in text else "\n").from_string(text)


_RE_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_RE_NEWLINE: Final = re.compile(r"\r\n|\r|\n")


@functools.lru_cache(maxsize=32)
def _plain_template(text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A template made only of text and ``{{ name }}`` placeholders, split into its texts
    (line ends made what Jinja2 makes them: all ``\r\n`` when the text has one, else ``\n``)
    and the names between them; None when it has anything else of the template language
    (any other ``{`` or ``}``), which Jinja2 then renders."""
    parts = _RE_PLACEHOLDER.split(text)
    literals = parts[0::2]
    if any("{" in part or "}" in part for part in literals):
        return None
    newline = "\r\n" if "\r\n" in text else "\n"
    return tuple(_RE_NEWLINE.sub(newline, part) for part in literals), tuple(parts[1::2])


def render_template(
    text: str,
    vector: ParamVector | Mapping[str, object],
    *,
    source: Path | str = "<template>",
) -> str:
    """Render ``{{ keyword }}`` placeholders (Jinja2 syntax, as nunjucks in WHEEL).

    Autoescaping is off, so ``< > & " '`` in values are written as they are (WHEEL escapes them
    as HTML). The template runs in Jinja2's sandbox. A name that is not a parameter, a syntax
    error or a failing expression raise :class:`ProjectError` naming ``source``. A text without
    ``{`` is returned unchanged, and the file's line endings are kept. A text whose only markup
    is ``{{ name }}`` placeholders of parameters is filled in without Jinja2, with the same
    result (Jinja2's line-ending rule included).
    """
    params = vector.params if isinstance(vector, ParamVector) else dict(vector)
    if "{" not in text:
        return text
    plain = _plain_template(text)
    if plain is not None:
        literals, keys = plain
        values = [v for v in (params.get(k) for k in keys) if isinstance(v, str)]
        if len(values) == len(keys):  # each a parameter (else Jinja2 names the unknown one)
            out = [literals[0]]
            for value, literal in zip(values, literals[1:], strict=True):
                out.append(value)
                out.append(literal)
            return "".join(out)
    import jinja2
    from jinja2.exceptions import SecurityError

    try:
        return _compile(text).render(params)
    except jinja2.TemplateSyntaxError as e:
        raise ProjectError(
            f"template syntax error at line {e.lineno}: {e.message}", path=source
        ) from None
    except jinja2.UndefinedError as e:
        names = ", ".join(sorted(params)) or "none"
        raise ProjectError(
            f"unknown placeholder in template: {e.message}; the parameters are {names}",
            path=source,
        ) from None
    except SecurityError as e:
        raise ProjectError(f"template uses something unsafe: {e}", path=source) from None
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as e:
        raise ProjectError(f"template cannot be rendered: {e}", path=source) from None


# ---------------------------------------------------------------------------------------------
# Scatter and gather


class FileRule(NamedTuple):
    """A scatter or gather rule rendered for one vector.

    ``node`` is the component ID (``dstNode`` of a scatter, ``srcNode`` of a gather) or None for
    the PS directory / instance itself. ``dst_name`` ending with ``/`` names a directory into
    which every match is copied under its own relative path.
    """

    src_glob: str
    node: str | None
    dst_name: str

    @property
    def dst_is_dir(self) -> bool:
        return self.dst_name == "" or self.dst_name.endswith(("/", "\\"))


def _render_name(setting: ParameterSetting, template: str, vector: ParamVector, where: str) -> str:
    return render_template(template, vector, source=f"{setting.path} [{where}]")


def resolve_scatter(setting: ParameterSetting, vector: ParamVector) -> list[FileRule]:
    """``(src glob in the PS directory, dst node or None, dst name)`` per scatter rule."""
    return [
        FileRule(
            _render_name(setting, rule.src_name, vector, f"scatter[{i}].srcName"),
            rule.dst_node,
            _render_name(setting, rule.dst_name, vector, f"scatter[{i}].dstName"),
        )
        for i, rule in enumerate(setting.scatter)
    ]


def resolve_gather(setting: ParameterSetting, vector: ParamVector) -> list[FileRule]:
    """``(src glob in the instance or src node, src node or None, dst name in the PS directory)``
    per gather rule."""
    return [
        FileRule(
            _render_name(setting, rule.src_name, vector, f"gather[{i}].srcName"),
            rule.src_node,
            _render_name(setting, rule.dst_name, vector, f"gather[{i}].dstName"),
        )
        for i, rule in enumerate(setting.gather)
    ]


def copy_pairs(
    rule: FileRule,
    src_dir: Path | str,
    dst_dir: Path | str,
    *,
    bounds: Bounds | None = None,
) -> list[tuple[Path, Path]]:
    """``(source, destination)`` paths for one rendered rule, as WHEEL copies them.

    ``rule.src_glob`` is matched in ``src_dir``. When ``rule.dst_is_dir``, each match keeps its
    relative path below ``dst_dir/dst_name``; otherwise each match is copied to
    ``dst_dir/dst_name`` (so several matches overwrite each other, as in WHEEL). Nothing may
    point outside ``src_dir`` or ``dst_dir`` (the names, as rendered), nor lead through a
    symbolic link out of the project (``bounds``; by default the project holding each
    directory): such a rule raises :class:`ProjectError` before anything is copied.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    _inside(rule.src_glob, "source", src_dir)
    _inside(rule.dst_name, "destination", dst_dir, empty_ok=True)
    src_bounds = bounds or Bounds.of(find_root(src_dir))
    dst_bounds = bounds or Bounds.of(find_root(dst_dir))
    pairs: list[tuple[Path, Path]] = []
    try:
        for match in _matches(rule.src_glob, src_dir):
            src = src_dir / match
            check_real(src, src_bounds, what="source", shown=match, named_ok=False)
            if rule.dst_is_dir:
                dst = dst_dir / rule.dst_name.rstrip("/\\") / match
            else:
                dst = dst_dir / rule.dst_name
            # a directory is merged into what is there: the destination itself is followed
            check_real(dst, dst_bounds, what="destination", follow=src.is_dir(), named_ok=False)
            pairs.append((src, dst))
    except UnsafePathError as e:
        raise ProjectError(str(e)) from None
    return pairs


def _matches(pattern: str, directory: Path) -> list[str]:
    """``sorted(glob.glob(pattern, root_dir=directory, recursive=True))``; a name without glob
    characters (the usual gather of one file per instance) is looked up once instead of
    matched."""
    if glob.has_magic(pattern):
        return sorted(glob.glob(pattern, root_dir=directory, recursive=True))
    path = os.path.join(directory, pattern)
    found = os.path.isdir(path) if pattern.endswith(("/", os.sep)) else os.path.lexists(path)
    return [pattern] if found and pattern else []


def _inside(name: str, what: str, root: Path, *, empty_ok: bool = False) -> None:
    problem = name_problem(name, empty_ok=empty_ok)
    if problem is not None:
        raise ProjectError(f"{what} {name!r} must stay inside {root}: it {problem}")


def copy_exclusions(
    setting: ParameterSetting,
    template_dir: Path | str,
    node_dirs: Mapping[str, str] | None = None,
) -> frozenset[str]:
    """Paths (relative, ``/``-separated) *not* copied from the PS directory into instances.

    As WHEEL: ``cmp.wheel.json``, the parameter file, every files-axis match (each instance gets
    only its own), the target files (they are rendered instead) and the scatter sources (matched
    with their names as written, before rendering). ``node_dirs`` maps the component IDs used
    by ``targetNode`` to their directories relative to the PS directory.
    """
    template_dir = Path(template_dir)
    excluded = {_COMPONENT_FILE}
    try:
        excluded.add(Path(setting.path).resolve().relative_to(template_dir.resolve()).as_posix())
    except ValueError:
        pass  # the parameter file lives elsewhere
    excluded.update(expand_space(setting, template_dir).files)
    excluded.update(target.path(node_dirs) for target in setting.target_files)
    for rule in setting.scatter:
        excluded.update(
            _posix(m) for m in glob.glob(rule.src_name, root_dir=template_dir, recursive=True)
        )
    return frozenset(excluded)
