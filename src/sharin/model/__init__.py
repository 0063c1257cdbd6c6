"""The workflow model: components, projects, WHEEL's file format and validation. No engine here.

The names below are loaded on first use (PEP 562), so that a command imports only the part of
the model it uses: ``sharin status`` reads the project without the expression language, the
parameter-study templates or validation.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from . import _clean as cleaning
    from . import _git as git
    from ._archive import archive_hosts, export_project, import_project
    from ._compat import task_field_problems, wheel_notes
    from ._component import (
        COMPONENT_FILE,
        CONTAINER_TYPES,
        PROJECT_FILE,
        ROOT_PARENT,
        RUN_FIELDS,
        STATUS_FILE,
        Component,
        ComponentType,
        FileLink,
        InputFile,
        OutputFile,
        State,
        is_valid_name,
        new_id,
        script_file_problem,
        step_order,
    )
    from ._expr import ExpressionError, evaluate, is_true, looks_like_script_name, parse_expression
    from ._hosts import LOCALHOST, HostConfig, config_dir, load_hosts, local_job_limit
    from ._jsonio import NEW_FILE_MODE, read_json_object, write_json_atomic
    from ._loops import (
        LoopTrip,
        for_trips,
        foreach_items,
        foreach_trips,
        validate_for,
        while_trip,
    )
    from ._paramstudy import (
        PARAMETER_FILE,
        ParameterSetting,
        ParamVector,
        copy_exclusions,
        copy_pairs,
        expand_space,
        instance_env,
        instance_name,
        load_parameter_setting,
        render_template,
        resolve_gather,
        resolve_scatter,
    )
    from ._project import Project, edit_lock, find_project_root, known_keys, project_header
    from ._validate import check, validate

#: the module (below this package) that defines each public name
_LAZY: dict[str, str] = {
    **dict.fromkeys(("archive_hosts", "export_project", "import_project"), "_archive"),
    **dict.fromkeys(("task_field_problems", "wheel_notes"), "_compat"),
    **dict.fromkeys(
        (
            "COMPONENT_FILE",
            "CONTAINER_TYPES",
            "PROJECT_FILE",
            "ROOT_PARENT",
            "RUN_FIELDS",
            "STATUS_FILE",
            "Component",
            "ComponentType",
            "FileLink",
            "InputFile",
            "OutputFile",
            "State",
            "is_valid_name",
            "script_file_problem",
            "new_id",
            "step_order",
        ),
        "_component",
    ),
    **dict.fromkeys(
        ("ExpressionError", "evaluate", "is_true", "looks_like_script_name", "parse_expression"),
        "_expr",
    ),
    **dict.fromkeys(
        ("LOCALHOST", "HostConfig", "config_dir", "load_hosts", "local_job_limit"), "_hosts"
    ),
    **dict.fromkeys(("NEW_FILE_MODE", "read_json_object", "write_json_atomic"), "_jsonio"),
    **dict.fromkeys(
        ("LoopTrip", "for_trips", "foreach_items", "foreach_trips", "validate_for", "while_trip"),
        "_loops",
    ),
    **dict.fromkeys(
        (
            "PARAMETER_FILE",
            "ParameterSetting",
            "ParamVector",
            "copy_exclusions",
            "copy_pairs",
            "expand_space",
            "instance_env",
            "instance_name",
            "load_parameter_setting",
            "render_template",
            "resolve_gather",
            "resolve_scatter",
        ),
        "_paramstudy",
    ),
    **dict.fromkeys(
        ("Project", "edit_lock", "find_project_root", "known_keys", "project_header"), "_project"
    ),
    **dict.fromkeys(("check", "validate"), "_validate"),
}
#: modules exported under another name
_MODULES = {"cleaning": "_clean", "git": "_git"}

__all__ = [
    "task_field_problems",
    "wheel_notes",
    "NEW_FILE_MODE",
    "edit_lock",
    "known_keys",
    "project_header",
    "archive_hosts",
    "export_project",
    "import_project",
    "PARAMETER_FILE",
    "ExpressionError",
    "LoopTrip",
    "ParamVector",
    "ParameterSetting",
    "copy_exclusions",
    "copy_pairs",
    "evaluate",
    "expand_space",
    "for_trips",
    "foreach_items",
    "foreach_trips",
    "instance_env",
    "instance_name",
    "is_true",
    "looks_like_script_name",
    "load_parameter_setting",
    "parse_expression",
    "render_template",
    "resolve_gather",
    "resolve_scatter",
    "validate_for",
    "while_trip",
    "COMPONENT_FILE",
    "CONTAINER_TYPES",
    "LOCALHOST",
    "PROJECT_FILE",
    "ROOT_PARENT",
    "RUN_FIELDS",
    "STATUS_FILE",
    "Component",
    "ComponentType",
    "FileLink",
    "HostConfig",
    "InputFile",
    "OutputFile",
    "Project",
    "State",
    "check",
    "cleaning",
    "config_dir",
    "find_project_root",
    "git",
    "is_valid_name",
    "load_hosts",
    "local_job_limit",
    "new_id",
    "script_file_problem",
    "step_order",
    "read_json_object",
    "validate",
    "write_json_atomic",
]


if not TYPE_CHECKING:  # type checkers see the imports above; the names exist at run time
    _getattr, __dir__ = lazy_exports(__name__, _LAZY, globals())

    def __getattr__(name: str) -> Any:
        where = _MODULES.get(name)
        if where is None:
            return _getattr(name)
        module: ModuleType = importlib.import_module(f"{__name__}.{where}")
        globals()[name] = module
        return module
