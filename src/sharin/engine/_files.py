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
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunError
from ..model import Component

__all__ = ["Delivery", "deliver", "has_magic", "resolve_sources", "storage_path"]


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


def copy_path(src: Path, dst: Path, *, merge: bool = False) -> None:
    """Copy a file or directory to ``dst`` so that no reader sees half of a file.

    A file goes through a temporary name and a rename. A directory replaces what ``dst`` was
    (the same way, whole), or with ``merge`` is copied into an existing ``dst`` (what a
    parameter study's scatter and gather, and a storage, do).
    """
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


def deliver(d: Delivery) -> list[Path]:
    """Deliver one input; returns the paths made. Raises RunError when a named file is missing."""
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
    as_dir = magic or d.dst_name.endswith(("/", "\\")) or d.dst_name == ""
    made = []
    for m in matches:
        src = d.src_dir / m
        if as_dir:
            dst = d.dst_dir / d.dst_name.rstrip("/\\") / m
        else:
            dst = d.dst_dir / d.dst_name
        if src.resolve() == dst.resolve() and not dst.is_symlink():
            continue
        if d.copy:
            copy_path(src, dst)
        else:
            _link_atomic(src, dst)
        made.append(dst)
    return made
