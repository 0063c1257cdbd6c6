"""Project archives in WHEEL's exchange format.

An archive is ``WHEEL_project_<name>.tgz`` holding one directory ``<name>.wheel/``: a clone of
the project's last save (its ``.git`` included) with every state set back to ``not-started`` and
``exportInfo`` (exporter, date, ``notChanged``) in ``prj.wheel.json`` — what OPEN-WHEEL's export
writes and its import reads. Import extracts it, rewinds states left by a run (unless asked to
keep them, to resume), maps host names this machine does not know, commits "import project" and
clones the result to ``<parent>/<name>.wheel``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from ..errors import ProjectError, ValidationError
from . import _git
from ._component import COMPONENT_FILE, PROJECT_FILE, PROJECT_SUFFIX, STATUS_FILE, State
from ._hosts import LOCALHOST
from ._jsonio import read_json_object, write_json_atomic

__all__ = ["archive_hosts", "export_project", "import_project"]

_HOST_TYPES = {"task", "stepjob", "stepjobTask", "bulkjobTask", "storage", "hpciss", "hpcisstar"}


def _component_files(root: Path) -> list[Path]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in (".git", ".sharin")]
        if COMPONENT_FILE in files:
            out.append(Path(d) / COMPONENT_FILE)
    return sorted(out)


def _rewind_states(root: Path) -> None:
    for f in _component_files(root):
        data = read_json_object(f)
        if data.get("state", State.NOT_STARTED.value) != State.NOT_STARTED.value:
            data["state"] = State.NOT_STARTED.value
            write_json_atomic(f, data)
        status = f.parent / STATUS_FILE
        if status.exists():
            status.unlink()
    prj = read_json_object(root / PROJECT_FILE)
    prj["state"] = State.NOT_STARTED.value
    prj.pop("readOnly", None)
    write_json_atomic(root / PROJECT_FILE, prj)


def archive_hosts(root: Path) -> dict[str, list[str]]:
    """Host label → component files that name it (localhost left out)."""
    used: dict[str, list[str]] = {}
    for f in _component_files(root):
        data = read_json_object(f)
        host = data.get("host")
        if data.get("type") in _HOST_TYPES and host and host != LOCALHOST:
            used.setdefault(str(host), []).append(str(f.relative_to(root)))
    return used


def export_project(
    root: Path,
    dest: Path | None = None,
    *,
    name: str | None = None,
    mail: str | None = None,
    memo: str | None = None,
) -> Path:
    """Write the project's last save as a WHEEL archive; returns the archive's path."""
    prj = read_json_object(root / PROJECT_FILE)
    pname = str(prj.get("name") or root.name.removesuffix(PROJECT_SUFFIX))
    archive = dest or Path.cwd() / f"WHEEL_project_{pname}.tgz"
    if archive.is_dir() or not archive.name.endswith((".tgz", ".tar.gz")):
        archive = archive / f"WHEEL_project_{pname}.tgz"
    with tempfile.TemporaryDirectory(prefix="sharin-export-") as tmp:
        work = Path(tmp) / f"{pname}{PROJECT_SUFFIX}"
        if _git.is_repo(root):
            _git.clone(root, work)
        else:
            shutil.copytree(root, work, symlinks=True, ignore=shutil.ignore_patterns(".sharin"))
            _git.init(work)
        _rewind_states(work)
        data = read_json_object(work / PROJECT_FILE)
        info: dict[str, Any] = dict(data.get("exportInfo") or {})
        exporter: dict[str, Any] = dict(info.get("exporter") or {})
        for key, value in (("name", name), ("mail", mail), ("memo", memo)):
            if value is not None:
                exporter[key] = value
        info.update(
            exporter=exporter,
            exportDate=time.strftime("%Y/%m/%d %H:%M:%S %Z"),
            notChanged=True,
        )
        data["exportInfo"] = info
        write_json_atomic(work / PROJECT_FILE, data)
        _git.commit_all(work, "export project")
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(work, arcname=work.name)
    return archive


def _extract(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise ProjectError(f"cannot be read as a project archive ({e})", path=archive) from None
    found = [p.parent for p in into.glob(f"*/{PROJECT_FILE}")] + (
        [into] if (into / PROJECT_FILE).exists() else []
    )
    if len(found) != 1:
        raise ProjectError(
            f"is not a WHEEL project archive: expected one directory with {PROJECT_FILE}",
            path=archive,
        )
    return found[0]


def import_project(
    source: Path,
    parent: Path,
    *,
    known_hosts: Collection[str] = (),
    host_map: Mapping[str, str] | None = None,
    ask_host: Callable[[str, list[str]], str] | None = None,
    keep_state: bool = False,
) -> Path:
    """Import an archive (``.tgz``) or a project directory into ``parent``; returns the new root.

    Hosts the project names that are neither ``localhost`` nor in ``known_hosts`` must be mapped,
    by ``host_map`` or by asking ``ask_host(label, files)``; otherwise nothing is written and the
    error lists them. States left by a run are rewound unless ``keep_state`` (to resume it).
    """
    host_map = dict(host_map or {})
    with tempfile.TemporaryDirectory(prefix="sharin-import-") as tmp:
        if source.is_dir():
            src = Path(tmp) / source.name
            shutil.copytree(source, src, symlinks=True, ignore=shutil.ignore_patterns(".sharin"))
            if not (src / PROJECT_FILE).exists():
                raise ProjectError(f"is not a project: no {PROJECT_FILE}", path=source)
        elif source.is_file():
            src = _extract(source, Path(tmp))
        else:
            raise ProjectError("no such archive or directory", path=source)
        _refuse_unsafe_names(src)
        prj = read_json_object(src / PROJECT_FILE)
        pname = str(prj.get("name") or src.name.removesuffix(PROJECT_SUFFIX))
        dest = parent / f"{pname}{PROJECT_SUFFIX}"
        if dest.exists() and any(dest.iterdir()):
            raise ProjectError(
                "already exists and is not empty; import into another directory", path=dest
            )
        known = {LOCALHOST, *known_hosts}
        unknown = {h: fs for h, fs in archive_hosts(src).items() if h not in known}
        for label, files in sorted(unknown.items()):
            if label not in host_map and ask_host is not None:
                host_map[label] = ask_host(label, files)
        missing = sorted(h for h in unknown if h not in host_map)
        if missing:
            listed = ", ".join(f"{h} (in {', '.join(unknown[h])})" for h in missing)
            raise ProjectError(
                f"the project uses hosts this machine does not know: {listed}; map each with "
                f"--host-map LABEL=HOST (e.g. --host-map {missing[0]}=localhost) or add them to "
                "remotehost.json",
                path=source,
            )
        bad = sorted(v for v in host_map.values() if v not in known)
        if bad:
            raise ProjectError(f"host map names unknown hosts: {', '.join(bad)}", path=source)
        for f in _component_files(src):
            data = read_json_object(f)
            host = data.get("host")
            if host in host_map and data.get("type") in _HOST_TYPES:
                data["host"] = host_map[str(host)]
                if host_map[str(host)] == LOCALHOST:
                    data["useJobScheduler"] = False
                write_json_atomic(f, data)
        if not keep_state:
            _rewind_states(src)
        prj = read_json_object(src / PROJECT_FILE)
        prj["root"] = str(dest.resolve())
        write_json_atomic(src / PROJECT_FILE, prj)
        if not _git.is_repo(src):
            _git.init(src)
        gi = src / ".gitignore"
        lines = gi.read_text().splitlines() if gi.exists() else []
        if ".sharin/" not in lines:
            gi.write_text("\n".join([*lines, ".sharin/"]) + "\n")
        _git.commit_all(src, "import project")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _git.clone(src, dest)
    return dest.resolve()


def _refuse_unsafe_names(root: Path) -> None:
    """An imported project must not name files outside its components (``../x``, ``/etc/x``)."""
    from ._project import Project
    from ._validate import name_problems, project_bounds

    project = Project.open(root)
    bounds = project_bounds(project)
    problems = [x for c in project.root_component.walk() for x in name_problems(c, bounds)]
    if problems:
        raise ValidationError(problems)
