"""Reading and writing WHEEL's JSON files: clear errors on read, atomic replace on write."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ProjectError

__all__ = ["NEW_FILE_MODE", "read_json_object", "write_json_atomic"]

_UMASK = os.umask(0)
os.umask(_UMASK)
#: the permission bits of a new regular file under this process's umask
NEW_FILE_MODE = 0o666 & ~_UMASK


def read_json_object(path: Path) -> dict[str, Any]:
    """Read a JSON object; every failure names the file, line and column and says what to do."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ProjectError(f"cannot be read ({e})", path=path) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}; "
            "fix the file by hand (or `git checkout` it) and try again",
            path=path,
        ) from None
    if not isinstance(value, dict):
        raise ProjectError(f"must hold a JSON object, found {type(value).__name__}", path=path)
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (2-space indent, as WHEEL does) through a temporary file and a rename.

    A crash leaves either the old file or the new one, never half of it.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = NEW_FILE_MODE
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
