"""The workflow model: components, projects, WHEEL's file format and validation. No engine here."""

from . import _git as git
from ._component import (
    COMPONENT_FILE,
    CONTAINER_TYPES,
    PROJECT_FILE,
    ROOT_PARENT,
    STATUS_FILE,
    Component,
    ComponentType,
    FileLink,
    InputFile,
    OutputFile,
    State,
    is_valid_name,
    new_id,
)
from ._hosts import LOCALHOST, HostConfig, config_dir, load_hosts
from ._jsonio import read_json_object, write_json_atomic
from ._project import Project, find_project_root
from ._validate import check, validate

__all__ = [
    "COMPONENT_FILE",
    "CONTAINER_TYPES",
    "LOCALHOST",
    "PROJECT_FILE",
    "ROOT_PARENT",
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
    "config_dir",
    "find_project_root",
    "git",
    "is_valid_name",
    "load_hosts",
    "new_id",
    "read_json_object",
    "validate",
    "write_json_atomic",
]
