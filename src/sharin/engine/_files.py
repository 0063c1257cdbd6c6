"""File edges: finding a consumer's inputs and delivering them with WHEEL's rules.

* ``srcName`` is a glob, matched in the producer's directory.
* The destination is a directory (each match keeps its relative path below it) when the source
  name has glob characters or ``dstName`` ends with ``/``; otherwise ``dstName`` is the new
  name of the single match (a rename). An empty ``dstName`` is the consumer's directory.
* Files are delivered as relative symbolic links, replaced atomically (a link made under a
  temporary name, then renamed over the old one), so a crash never leaves half a file.
"""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunError
from ..model import COMPONENT_FILE, STATUS_FILE, Component, ComponentType, HostConfig, Project
from ..model._cleanup import cleanup_flag, removes_host_dir
from ..model._paths import (
    Bounds,
    UnsafePathError,
    check_real,
    find_root,
    is_inside,
    name_problem,
)
from ._protocol import HostLink

#: WHEEL's files in a component's directory: never delivered, never replaced by a delivery
_OWN_FILES = frozenset({COMPONENT_FILE, STATUS_FILE})

__all__ = [
    "Delivery",
    "check_tree",
    "cleanup_flag",
    "copy_path",
    "deliver",
    "has_magic",
    "host_links",
    "left_on_host",
    "removes_host_dir",
    "resolve_sources",
    "run_bounds",
    "same_host",
    "storage_path",
]


def has_magic(name: str) -> bool:
    return glob.has_magic(name) or any(ch in name for ch in "{}")


@dataclass(frozen=True)
class Delivery:
    """One input of one consumer: where to look (directory and glob) and where to put it."""

    producer: str  #: a name for messages
    src_dir: Path
    pattern: str
    dst_dir: Path
    dst_name: str
    copy: bool = False  #: a real copy (from a storage) instead of a link
    #: names in ``dst_dir`` a delivery never replaces (the consumer's script); WHEEL's own
    #: files (``cmp.wheel.json``, ``status.wheel.txt``) are never delivered nor replaced
    keep: frozenset[str] = frozenset()


def storage_path(c: Component) -> Path:
    """Where a storage component keeps its files (an absolute directory on this machine)."""
    raw = c.data.get("storagePath")
    if not raw:
        raise RunError(f"{c.rel}: storagePath is not set; set it to a directory on this machine")
    if c.host != "localhost":
        raise RunError(
            f"{c.rel}: storage on host {c.host!r} needs remote execution, not available yet"
        )
    p = Path(str(raw)).expanduser()
    if not p.is_absolute():
        raise RunError(f"{c.rel}: storagePath {raw!r} must be an absolute path")
    return p


def resolve_sources(
    container: Component, container_dir: Path, node_id: str, name: str
) -> list[tuple[str, Path, str, bool]]:
    """Where output ``name`` of ``node_id`` is, as seen inside ``container``.

    Each answer is (producer path, directory, glob, copy?). ``node_id`` is a child of
    ``container`` or the container itself (a parent's input forwarded down). A child that is
    itself a container hands over its own children's outputs (``origin``); a storage component
    hands over copies of what it keeps.
    """
    if node_id == container.id:
        return [(container.rel or "(project)", container_dir, name, False)]
    for child in container.children:
        if child.id != node_id:
            continue
        child_dir = container_dir / child.name
        if child.type == "storage":
            return [(child.rel, storage_path(child), name, True)]
        if not child.is_container:
            return [(child.rel, child_dir, name, False)]
        found: list[tuple[str, Path, str, bool]] = []
        for out in child.output_files:
            if out.name != name:
                continue
            for link in out.origin:
                found.extend(resolve_sources(child, child_dir, link.node, link.name))
        if not found:
            # a container may also produce a file itself (e.g. gathered into its directory)
            found.append((child.rel, child_dir, name, False))
        return found
    return []


def _link_atomic(target: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(target, dst.parent)
    tmp = dst.with_name(f".{dst.name}.sharin-tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(rel, tmp)
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


def copy_path(src: Path, dst: Path, *, merge: bool = False, bounds: Bounds | None = None) -> None:
    """Copy a file or directory to ``dst`` so that no reader sees half of a file.

    A file goes through a temporary name and a rename. A directory replaces what ``dst`` was
    (the same way, whole), or with ``merge`` is copied into an existing ``dst`` (what a
    parameter study's scatter and gather, and a storage, do). Symbolic links in a directory
    are copied as what they point to; with ``bounds``, a link below ``src`` that leads outside
    them raises :class:`RunError` before anything is copied.
    """
    if bounds is not None and src.is_dir():
        try:
            check_tree(src, bounds)
        except UnsafePathError as e:
            raise RunError(f"{e}; nothing was copied") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.sharin-tmp")
    if src.is_dir():
        if merge:
            shutil.copytree(src, dst, dirs_exist_ok=True)
            return
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(src, tmp)
        if dst.is_symlink() or dst.is_file():
            dst.unlink()
        elif dst.is_dir():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
        return
    shutil.copyfile(src, tmp)
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


def check_tree(top: Path, bounds: Bounds) -> None:
    """Raise :class:`UnsafePathError` when a symbolic link below the directory ``top`` leads
    outside ``bounds`` (links inside are followed and their trees checked too, once each)."""
    seen = {os.path.realpath(top)}
    for d, dirs, files in os.walk(top, followlinks=True):
        for name in [*dirs, *files]:
            path = os.path.join(d, name)
            if os.path.islink(path):
                check_real(Path(path), bounds, shown=os.path.relpath(path, top.parent))
        keep = []
        here = os.path.realpath(d)
        for x in dirs:
            real = os.path.realpath(os.path.join(d, x))
            if is_inside(here, real):
                shown = os.path.relpath(os.path.join(d, x), top.parent)
                raise UnsafePathError(
                    f"{shown!r} is a symbolic link to a directory that holds it, so a copy "
                    "would never end; remove the link"
                )
            if real not in seen:
                seen.add(real)
                keep.append(x)
        dirs[:] = keep


def deliver(d: Delivery, bounds: Bounds | None = None) -> list[Path]:
    """Deliver one input; returns the paths made. Raises RunError when a named file is missing,
    or when a name or a match would reach outside the project (``bounds``; by default the
    project holding the consumer, and for a copy from a storage, its storage path): then
    nothing is made, removed or replaced."""
    if bounds is None:
        common = Path(os.path.commonpath([d.src_dir, d.dst_dir]))
        bounds = Bounds.of(find_root(d.dst_dir, common if not d.copy else d.dst_dir))
    src_bounds = Bounds.of(bounds.root, (*bounds.named, d.src_dir)) if d.copy else bounds
    what = f"input {d.dst_name or d.pattern!r} of {d.dst_dir.name}"
    for name, role, empty_ok in ((d.pattern, "source", False), (d.dst_name, "name", True)):
        problem = name_problem(name, empty_ok=empty_ok)
        if problem is not None:
            raise RunError(f"{what}: the {role} {name!r} {problem}; nothing was delivered")
    magic = has_magic(d.pattern)
    if magic:
        matches = sorted(glob.glob(d.pattern, root_dir=d.src_dir))
    else:
        matches = (
            [d.pattern]
            if (d.src_dir / d.pattern).exists() or (d.src_dir / d.pattern).is_symlink()
            else []
        )
    if not matches:
        if magic:
            return []
        raise RunError(
            f"input {d.dst_name or d.pattern!r} of {d.dst_dir.name}: {d.producer} has no file "
            f"{d.pattern!r} (looked in {d.src_dir}); check that it writes it and that the "
            "edge names the right file"
        )
    # "." (or "./.") names the consumer's directory itself: a directory, never a rename
    as_dir = magic or d.dst_name.endswith(("/", "\\")) or os.path.normpath(d.dst_name or ".") == "."
    plan: list[tuple[Path, Path]] = []
    try:
        for m in matches:
            src = d.src_dir / m
            check_real(src, src_bounds, what=f"{d.producer}'s file", shown=m)
            if as_dir:
                dst = d.dst_dir / d.dst_name.rstrip("/\\") / m
            else:
                dst = d.dst_dir / d.dst_name
            # the link (or copy) replaces what is at dst: its directory must be inside
            check_real(
                dst, bounds, what="destination", shown=str(dst), follow=False, named_ok=False
            )
            own = _OWN_FILES | d.keep
            if m in _OWN_FILES or (dst.parent == d.dst_dir and dst.name in own):
                if magic:
                    continue  # a glob matches WHEEL's files or the script: left alone
                raise RunError(
                    f"{what}: {dst.name!r} is the component's own file (its JSON, status or "
                    "script) and is not replaced by a delivery; give the input another name"
                )
            plan.append((src, dst))
    except UnsafePathError as e:
        raise RunError(f"{what}: {e}; nothing was delivered") from None
    made = []
    for src, dst in plan:
        if src.resolve() == dst.resolve() and not dst.is_symlink():
            continue
        if d.copy:
            copy_path(src, dst, bounds=src_bounds)
        else:
            _link_atomic(src, dst)
        made.append(dst)
    return made


_bounds_cache: weakref.WeakKeyDictionary[Project, dict[tuple[str, ...], Bounds]] = (
    weakref.WeakKeyDictionary()
)


def run_bounds(project: Project, hosts: Mapping[str, HostConfig] | None = None) -> Bounds:
    """Where a run's files may lead: the project, its storage components' storage paths and
    the hosts' ``path`` directories (places the user named). Computed once per project and
    set of hosts."""
    host_paths = tuple(sorted(h.path for h in (hosts or {}).values() if h.path))
    known = _bounds_cache.setdefault(project, {})
    found = known.get(host_paths)
    if found is None:
        named = [
            str(c.data.get("storagePath"))
            for c in project.root_component.walk()
            if c.type == "storage" and str(c.data.get("storagePath") or "").startswith(("/", "~"))
        ]
        named += [p for p in host_paths if p.startswith(("/", "~"))]
        found = known[host_paths] = Bounds.of(project.root, named)
    return found


# ------------------------------------------------------------------------------------ hosts
def same_host(src: HostConfig, dst: HostConfig) -> bool:
    """Whether a file ``src`` left in a working directory is reachable where ``dst`` runs:
    the same label, the same host, user and port, or ``dst``'s ``sharedHost`` naming ``src``."""
    if src.name == dst.name:
        return True
    if (src.host, src.user or "", src.port) == (dst.host, dst.user or "", dst.port):
        return True
    return str(dst.raw.get("sharedHost") or "") == src.name


def _staged_host(c: Component, hosts: Mapping[str, HostConfig]) -> HostConfig | None:
    """The host a task is staged to (a working directory below the host's ``path``)."""
    if c.type != ComponentType.TASK or c.disabled:
        return None
    cfg = hosts.get(c.host)
    if cfg is None or not cfg.path or c.host == "localhost":
        return None
    return cfg


def _linkable(producer: Component, consumer: Component, hosts: Mapping[str, HostConfig]) -> bool:
    """Whether ``consumer`` links ``producer``'s outputs on its host instead of receiving them
    from here: both staged to hosts that share their files, and the producer keeps its
    working directory (one removed after its stage-out sends its outputs here, as usual)."""
    src, dst = _staged_host(producer, hosts), _staged_host(consumer, hosts)
    return (
        src is not None
        and dst is not None
        and same_host(src, dst)
        and not removes_host_dir(producer)
    )


def left_on_host(c: Component, hosts: Mapping[str, HostConfig]) -> frozenset[str]:
    """The outputs of ``c`` its stage-out does not bring here: each of their destinations is
    a sibling task that links them on the host (OPEN-WHEEL's ``needDownload``). An output
    going anywhere else (this machine, another host, out of the workflow) comes back."""
    parent = c.parent
    if parent is None or _staged_host(c, hosts) is None:
        return frozenset()
    siblings = {x.id: x for x in parent.children}
    left = set()
    for out in c.output_files:
        targets = [siblings.get(d.node) for d in out.dst]
        if targets and all(t is not None and _linkable(c, t, hosts) for t in targets):
            left.add(out.name)
    return frozenset(left)


def host_links(
    c: Component,
    project_root: Path,
    cdir: Path,
    hosts: Mapping[str, HostConfig],
    dir_of: Callable[[str], str | None],
) -> dict[tuple[str, str, str], HostLink]:
    """The inputs of ``c`` (run in ``cdir``) linked on its host: ``(input name, source node,
    source name)`` → the link. ``dir_of(key)`` is the working directory on the host of the
    task ``key`` when it finished (None: not known, the input is delivered from here)."""
    parent = c.parent
    if parent is None or _staged_host(c, hosts) is None:
        return {}
    siblings = {x.id: x for x in parent.children}
    found: dict[tuple[str, str, str], HostLink] = {}
    for inp in c.input_files:
        for link in inp.src:
            producer = siblings.get(link.node)
            if producer is None or not _linkable(producer, c, hosts):
                continue
            if link.name not in left_on_host(producer, hosts):
                continue  # it came back here: delivered from here
            key = os.path.relpath(cdir.parent / producer.name, project_root).replace(os.sep, "/")
            where = dir_of(key)
            if where is None:
                continue
            found[(inp.name, link.node, link.name)] = HostLink(
                producer.rel or producer.name, posixpath.normpath(where), link.name, inp.name
            )
    return found
