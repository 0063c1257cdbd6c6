"""Project archives in WHEEL's exchange format.

An archive is ``WHEEL_project_<name>.tgz`` holding one directory ``<name>.wheel/``: a clone of
the project's last save (its ``.git`` included) with every state set back to ``not-started`` and
``exportInfo`` (exporter, date, ``notChanged``) in ``prj.wheel.json`` — what OPEN-WHEEL's export
writes and its import reads. Import extracts it, rewinds states left by a run (unless asked to
keep them, to resume), maps host names this machine does not know, commits "import project" and
clones the result to ``<parent>/<name>.wheel``.
"""

from __future__ import annotations

import lzma
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from ..errors import ProjectError, ValidationError
from . import _git
from ._component import (
    COMPONENT_FILE,
    PROJECT_FILE,
    PROJECT_SUFFIX,
    STATUS_FILE,
    State,
    is_valid_name,
)
from ._hosts import LOCALHOST
from ._jsonio import NEW_FILE_MODE, read_json_object, write_json_atomic

__all__ = ["archive_hosts", "export_project", "import_project"]

_HOST_TYPES = {"task", "stepjob", "stepjobTask", "bulkjobTask", "storage", "hpciss", "hpcisstar"}


def _component_files(root: Path) -> list[Path]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in (".git", ".sharin")]
        if COMPONENT_FILE in files:
            out.append(Path(d) / COMPONENT_FILE)
    return sorted(out)


def _leaving_links(root: Path) -> list[tuple[str, str]]:
    """Symbolic links below ``root`` that are absolute or lead out of it: (path, target)."""
    top = os.path.realpath(root)
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not (d == str(root) and x == ".git")]
        for name in [*dirs, *files]:
            p = os.path.join(d, name)
            if not os.path.islink(p):
                continue
            target = os.readlink(p)
            real = os.path.realpath(p)
            if os.path.isabs(target) or os.path.commonpath([top, real]) != top:
                out.append((os.path.relpath(p, root), target))
    return sorted(out)


#: files of WHEEL's project format before 2019 (one JSON per container, index-based links)
_OLD_FORMAT = ("swf.prj.json", "define.wf.json")


def _old_format_error(where: Path, found: Path) -> ProjectError:
    return ProjectError(
        f"is a project in WHEEL's format before 2019 ({found.name}), which sharin does not "
        f"read; open it in WHEEL 2019 or later (which converts it to {PROJECT_FILE} and "
        "cmp.wheel.json files), export it from there and import that archive",
        path=where,
    )


def _find_old_format(root: Path) -> Path | None:
    for name in _OLD_FORMAT:
        for hit in (root / name, *root.glob(f"*/{name}")):
            if hit.is_file():
                return hit
    return None


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
    dereference: bool = False,
) -> Path:
    """Write the project's last save as a WHEEL archive; returns the archive's path.

    A symbolic link that is absolute or leads out of the project would not survive the trip
    (import refuses it): it is an error naming the link, unless ``dereference``, which puts a
    copy of what it points to (a file or directory this user can read) in the archive.
    """
    prj = read_json_object(root / PROJECT_FILE)
    pname = str(prj.get("name") or root.name.removesuffix(PROJECT_SUFFIX))
    if not is_valid_name(pname):
        raise ProjectError(
            f"{PROJECT_FILE} [name]: {pname!r} is not a project name (only letters, digits, "
            "'_' and '-'); fix the name",
            path=root,
        )
    archive = dest or Path.cwd() / f"WHEEL_project_{pname}.tgz"
    if archive.is_dir() or not archive.name.endswith((".tgz", ".tar.gz")):
        archive = archive / f"WHEEL_project_{pname}.tgz"
    with tempfile.TemporaryDirectory(prefix="sharin-export-") as tmp:
        work = Path(tmp) / f"{pname}{PROJECT_SUFFIX}"
        if _git.is_repo(root):
            _git.clone(root, work)
        else:
            top = str(root)

            def ignore(d: str, names: list[str]) -> set[str]:
                # a .git that is not a repository of the project's own (a file naming another
                # repository, a link) and the run history stay behind
                return {".git", ".sharin"} & set(names) if d == top else set()

            shutil.copytree(root, work, symlinks=True, ignore=ignore)
            _git.init(work)
        _resolve_leaving_links(root, work, dereference)
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
        made = _missing_dirs(archive.parent)
        part: Path | None = None
        try:
            archive.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{archive.name}.", dir=archive.parent)
            part = Path(name)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                tar.add(work, arcname=work.name)
            os.chmod(part, NEW_FILE_MODE)  # mkstemp made it private
            os.replace(part, archive)  # an archive that was there stays whole until then
        except OSError as e:
            if part is not None:
                part.unlink(missing_ok=True)
            if made:
                shutil.rmtree(made[0], ignore_errors=True)
            raise ProjectError(
                f"cannot write the archive ({e.strerror or e}); choose another place with -o",
                path=archive,
            ) from None
    return archive


def _resolve_leaving_links(root: Path, work: Path, dereference: bool) -> None:
    bad = _leaving_links(work)
    if not bad:
        return
    if not dereference:
        listed = ", ".join(f"{p} -> {t}" for p, t in bad)
        raise ProjectError(
            f"symbolic links that leave the project cannot be exported (import would refuse "
            f"them): {listed}; make each a relative link to a file inside the project, or pass "
            "--dereference to put a copy of its target in the archive",
            path=root,
        )
    for rel, target in bad:
        real = Path(os.path.realpath(root / rel))
        dst = work / rel
        try:
            if real.is_dir():
                dst.unlink()
                shutil.copytree(real, dst, symlinks=False)
            elif real.is_file():
                with open(real, "rb"):
                    pass  # readable
                dst.unlink()
                shutil.copy2(real, dst)
            else:
                raise ProjectError(
                    f"{rel} -> {target} points to nothing this machine has; remove the link "
                    "or make it point to a file or directory",
                    path=root,
                )
        except OSError as e:
            raise ProjectError(
                f"{rel} -> {target}: the target cannot be copied ({e.strerror or e}); make it "
                "readable or remove the link",
                path=root,
            ) from None
    again = _leaving_links(work)
    if again:
        listed = ", ".join(f"{p} -> {t}" for p, t in again)
        raise ProjectError(
            f"the copied targets hold symbolic links that leave the project: {listed}; "
            "make them relative links inside the project",
            path=root,
        )


def _extract(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(into, filter="data")
            # read on to the end of the compressed stream: tar stops at its end-of-archive
            # blocks, before gzip's checksum, so a changed byte would otherwise go unseen
            assert tar.fileobj is not None
            while tar.fileobj.read(1 << 20):
                pass
    except tarfile.FilterError as e:
        raise ProjectError(
            f"holds an entry that would leave the project or is not plain data ({e}); a "
            "project may link only to files inside itself (export it with --dereference to "
            "copy the targets)",
            path=archive,
        ) from None
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        # EOFError: the archive ends early (a download cut short); zlib/lzma: corrupt data
        raise ProjectError(
            f"cannot be read as a project archive ({e or type(e).__name__}); "
            "download or export it again",
            path=archive,
        ) from None
    found = [p.parent for p in into.glob(f"*/{PROJECT_FILE}")] + (
        [into] if (into / PROJECT_FILE).exists() else []
    )
    if not found:
        old = _find_old_format(into)
        if old is not None:
            raise _old_format_error(archive, old)
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
            if not (source / PROJECT_FILE).exists():
                old = _find_old_format(source)
                if old is not None:
                    raise _old_format_error(source, old)
                raise ProjectError(f"is not a project: no {PROJECT_FILE}", path=source)
            src = Path(tmp) / source.name
            top = str(source)

            def ignore(d: str, names: list[str]) -> set[str]:
                # the source's own repository and run history never come along
                return {".git", ".sharin"} & set(names) if d == top else set()

            shutil.copytree(source, src, symlinks=True, ignore=ignore)
        elif source.is_file():
            src = _extract(source, Path(tmp))
            for own in (".git", ".sharin"):  # an archive's repository may carry hooks, config
                p = src / own
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif p.exists() or p.is_symlink():
                    p.unlink()
        else:
            raise ProjectError("no such archive or directory", path=source)
        links = _leaving_links(src)
        if links:
            listed = ", ".join(f"{p} -> {t}" for p, t in links)
            raise ProjectError(
                f"holds symbolic links that leave the project: {listed}; a project may link "
                "only to files inside itself (export it with --dereference to copy the targets)",
                path=source,
            )
        _refuse_unsafe_names(src)
        prj = read_json_object(src / PROJECT_FILE)
        pname = str(prj.get("name") or src.name.removesuffix(PROJECT_SUFFIX))
        if not is_valid_name(pname):
            raise ProjectError(
                f"{PROJECT_FILE} [name]: {pname!r} is not a project name (only letters, digits, "
                "'_' and '-'); fix the name in the archive",
                path=source,
            )
        dest = parent / f"{pname}{PROJECT_SUFFIX}"
        if dest.exists() and any(dest.iterdir()):
            raise ProjectError(
                "already exists and is not empty; import into another directory", path=dest
            )
        known = {LOCALHOST, *known_hosts}
        unknown = {h: fs for h, fs in archive_hosts(src).items() if h not in known}
        for label, files in sorted(unknown.items()):
            if label not in host_map and ask_host is not None:
                answer = ask_host(label, files)
                if answer:
                    host_map[label] = answer
        missing = sorted(h for h in unknown if not host_map.get(h))
        if missing:
            listed = ", ".join(f"{h} (in {', '.join(unknown[h])})" for h in missing)
            flags = " ".join(f"--host-map {h}=HOST" for h in missing)
            raise ProjectError(
                f"the project uses hosts this machine does not know: {listed}; map each to "
                f"localhost or a label of remotehost.json with {flags} "
                f"(e.g. --host-map {missing[0]}=localhost), or add them to remotehost.json",
                path=source,
            )
        bad = sorted({f"{k}={v}" for k, v in host_map.items() if v not in known})
        if bad:
            names = ", ".join(sorted(known))
            raise ProjectError(
                f"--host-map names hosts this machine does not know: {', '.join(bad)}; "
                f"use one of: {names} (remotehost.json lists the labels)",
                path=source,
            )
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
        _git.init(src)
        gi = src / ".gitignore"
        lines = gi.read_text().splitlines() if gi.exists() else []
        if ".sharin/" not in lines:
            gi.write_text("\n".join([*lines, ".sharin/"]) + "\n")
        _git.commit_all(src, "import project")
        made = _missing_dirs(dest)
        try:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                _git.clone(src, dest)
            except OSError as e:
                raise ProjectError(
                    f"cannot create the project here ({e.strerror or e}); import into a "
                    "directory you can write",
                    path=dest,
                ) from None
        except BaseException:
            if made:
                shutil.rmtree(made[0], ignore_errors=True)
            elif dest.is_dir():  # it was there and empty: leave it empty
                for child in dest.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink()
            raise
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


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, outermost first."""
    out = []
    p = path.absolute()
    while not p.exists():
        out.append(p)
        if p.parent == p:
            break
        p = p.parent
    return out[::-1]
