"""Reading and writing WHEEL's JSON files: clear errors on read, atomic replace on write."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ProjectError

__all__ = [
    "NEW_FILE_MODE",
    "json_kind",
    "json_object",
    "parse_json",
    "read_bytes",
    "read_json",
    "read_json_object",
    "show_json",
    "write_json_atomic",
]

_UMASK = os.umask(0)
os.umask(_UMASK)
#: the permission bits of a new regular file under this process's umask
NEW_FILE_MODE = 0o666 & ~_UMASK


def current_umask() -> int:
    """This process's umask now, read without changing it (``os.umask`` would set it for every
    thread meanwhile); where ``/proc`` does not tell it, the one it had when sharin was loaded."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK


def read_json_object(path: Path) -> dict[str, Any]:
    """Read a JSON object; every failure names the file, line and column and says what to do."""
    return json_object(read_json(path), path)


def read_json(path: Path) -> Any:
    """Read any JSON value; a file that is missing, unreadable or not JSON is a ProjectError."""
    return parse_json(read_bytes(path), path)


def read_bytes(path: Path) -> bytes:
    """A file's bytes; a file that is missing or unreadable is a ProjectError naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ProjectError("file not found", path=path) from None
    except IsADirectoryError:
        raise ProjectError("is a directory, not a file", path=path) from None
    except OSError as e:
        raise ProjectError(f"cannot be read ({e.strerror or e})", path=path) from None


def parse_json(raw: bytes, path: Path) -> Any:
    """The JSON value ``raw`` (the bytes of ``path``) holds; text that is not UTF-8 or not JSON
    is a ProjectError naming the file, the line and the column."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark, as some Windows editors write
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProjectError(
            f"is not a text file in UTF-8 (byte {e.start + 1} is not valid); "
            "restore it (`git checkout` it) or save it as UTF-8 text",
            path=path,
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"malformed JSON at line {e.lineno}, column {e.colno}: {_json_words(e.msg)}; "
            "fix the file by hand (or `git checkout` it) and try again",
            path=path,
        ) from None
    except RecursionError:
        raise ProjectError(
            "nests lists or objects too deeply to be read; fix the file by hand", path=path
        ) from None


def json_object(value: Any, path: Path) -> dict[str, Any]:
    """``value`` when it is a JSON object, else a ProjectError saying what ``path`` holds."""
    if not isinstance(value, dict):
        raise ProjectError(
            f"must hold a JSON object ({{...}}), not {json_kind(value)}; "
            "fix the file by hand (or `git checkout` it) and try again",
            path=path,
        )
    return value


def _json_words(msg: str) -> str:
    """The JSON parser's message, lower-cased and without Python's quoting of property names."""
    msg = msg.replace(
        "Expecting property name enclosed in double quotes",
        "expecting a field name in double quotes",
    )
    return msg[:1].lower() + msg[1:]


def json_kind(value: object) -> str:
    """What a JSON value is, in words: ``a list``, ``a string``, ``null`` …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a value JSON does not have"


def show_json(value: Any, limit: int = 60) -> str:
    """A value as JSON writes it (``true``, ``null``, ``"abc"``), shortened when long."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = str(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str | list | dict):
        unit = {str: "characters", list: "items", dict: "fields"}[type(value)]
        return f"{text[: limit - 5]}… ({json_kind(value)} of {len(value):,} {unit})"
    return text[: limit - 1] + "…"


def dumps_indented(data: Any) -> str:
    """``json.dumps(data, indent=2, ensure_ascii=False)``, the same text.

    The standard library writes indented JSON in Python (50-200 µs for a component's file,
    which the state mirror writes for every task); msgspec's encoder writes the same text for
    JSON's own types several times faster, so once it is loaded (opening a project loads it)
    it is used when ``data`` holds only those: objects with string keys, lists, strings, whole
    numbers, booleans and null. Anything else (a float, which msgspec writes as ``1e16`` where
    Python writes ``1e+16``, or a value JSON has no type for) takes the standard library.
    """
    msgspec = sys.modules.get("msgspec")  # not imported for this: a run has it already
    if msgspec is not None and _plain_json(data, 0):
        try:
            text: str = msgspec.json.format(msgspec.json.encode(data), indent=2).decode()
            return text
        except (TypeError, ValueError, msgspec.MsgspecError):
            pass  # e.g. a lone surrogate in a string: the standard library says what
    return json.dumps(data, indent=2, ensure_ascii=False)


def _plain_json(value: Any, depth: int) -> bool:
    """True when ``value`` is made only of dicts with string keys, lists, strings, whole
    numbers msgspec writes as numbers (64 bits), booleans and None."""
    kind = type(value)
    if kind is dict:
        if any(type(k) is not str for k in value):
            return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return _plain_leaf(value)
    if depth > 64:
        return False
    for v in items:
        kind = type(v)
        if kind is str or v is None or kind is bool:
            continue
        if kind is int:
            if not -(2**63) <= v < 2**64:
                return False
        elif not _plain_json(v, depth + 1):
            return False
    return True


def _plain_leaf(value: Any) -> bool:
    kind = type(value)
    if kind is int:
        return bool(-(2**63) <= value < 2**64)
    return kind is str or kind is bool or value is None


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (2-space indent, as WHEEL does) through a temporary file and a rename.

    A crash leaves either the old file or the new one, never half of it.
    """
    write_bytes_atomic(path, (dumps_indented(data) + "\n").encode("utf-8"))


def write_bytes_atomic(path: Path, raw: bytes) -> None:
    """Write ``raw`` to ``path`` through a temporary file and a rename, with the mode the file
    had (a new file: :data:`NEW_FILE_MODE`)."""
    import tempfile  # not needed to read a project

    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
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
