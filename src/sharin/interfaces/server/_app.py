"""The FastAPI application: projects, components, edges, files, runs, logs and live events.

Endpoints that read or change files are plain functions, which FastAPI runs in its thread pool:
the event loop only moves requests, events and log lines. Runs started here are engines of this
process (:func:`sharin.interfaces.api.start_run`); they keep running when every tab is closed.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
import webbrowser
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, File, Form, Query, Request, UploadFile, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from ... import model
from ...errors import BusyError, Problem, ProjectError, SharinError, ValidationError
from ...model import Component, Project
from ...model._jsonio import read_json_object, write_json_atomic
from ...model._paths import Bounds, UnsafePathError, name_problem, resolve_inside
from .. import api
from .._hub import Change, Edit, EventHub, Snapshot
from ._auth import TokenGate
from ._feed import JournalFeed
from ._prompts import PromptBroker
from ._state import NotFound, ServerConfig, ServerState
from ._static import add_static_routes

__all__ = ["ServerConfig", "create_app", "serve"]

#: states of a task that has not ended
_LIVE = ("running", "queued", "stage-in", "stage-out", "waiting", "not-started")

#: the project's own directories, never listed, read or written through the file endpoints
_PRIVATE = (".git", ".sharin")

#: the endpoints that edit a project (by function name) and what their ``edit`` message says
_EDITS = {
    "rename_project": "rename",
    "delete_project": "delete",
    "add_component": "add",
    "set_properties": "properties",
    "remove_component": "remove",
    "connect": "connect",
    "disconnect": "disconnect",
    "connect_files": "connect",
    "disconnect_files": "disconnect",
    "save": "save",
    "revert": "revert",
    "clean": "clean",
    "write_file": "file",
    "upload": "upload",
    "put_parameters": "parameters",
}

#: the header a browser tab names itself with (its edits come back to it marked as its own)
CLIENT_HEADER = "X-Sharin-Client"
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# ---------------------------------------------------------------------- bodies
class NewProject(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class OpenProject(BaseModel):
    path: str = Field(min_length=1)


class Rename(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class NewComponent(BaseModel):
    type: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=200)
    parent: str | None = None  #: the parent component's ID (default: the root workflow)
    pos: dict[str, float] | None = None  #: where the editor drew it (``{"x": …, "y": …}``)


class Properties(BaseModel):
    properties: dict[str, Any]


class FlowEdge(BaseModel):
    src: str
    dst: str
    else_: bool = Field(default=False, alias="else")


class FileEdge(BaseModel):
    src: str
    src_name: str = Field(min_length=1)
    dst: str
    dst_name: str = Field(min_length=1)


class RunRequest(BaseModel):
    restart: bool = False
    keep_going: bool = False


class CleanRequest(BaseModel):
    component: str | None = None
    #: what to do with unsaved changes of files runs made: refuse (default), keep or discard
    unsaved: str = Field(default="refuse", pattern="^(refuse|keep|discard)$")


class SaveRequest(BaseModel):
    message: str = "save project"


# ---------------------------------------------------------------------- answers
def _component_json(c: Component) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "type": c.type,
        "path": c.rel,
        "state": c.state,
        "properties": c.data,
        "children": [_component_json(x) for x in c.children],
    }


def _project_json(pid: str, p: Project) -> dict[str, Any]:
    return {
        "id": pid,
        "name": p.name,
        "root": str(p.root),
        "state": p.state,
        "description": p.data.get("description", ""),
        "workflow": _component_json(p.root_component),
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _event_json(e: Any) -> dict[str, Any]:
    return dataclasses.asdict(e)


def _snapshot_json(s: Snapshot) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "seq": s.seq,
        "run": _event_json(s.run) if s.run else None,
        "states": {k: _event_json(v) for k, v in s.states.items()},
        "edit": s.edit,
    }


def _change_json(c: Change | Edit) -> dict[str, Any]:
    if isinstance(c, Edit):
        out: dict[str, Any] = {
            "type": "edit",
            "seq": c.seq,
            "what": c.what,
            "component": c.component,
            "by": c.by,
        }
        if c.moved is not None:
            out["id"] = c.moved  # the project's id after a rename
        return out
    return {"type": "change", "seq": c.seq, "event": _event_json(c.event)}


# ---------------------------------------------------------------------- files
def _inside(root: Path, rel: str, *, what: str = "path") -> Path:
    """``root/rel`` after checking it names a place inside the project (not its private
    directories, no ``..``, not absolute, no link leading out)."""
    problem = name_problem(rel, empty_ok=True)
    if problem is not None:
        raise UnsafePathError(f"{what} {rel!r} {problem}")
    parts = [x for x in rel.replace("\\", "/").split("/") if x not in ("", ".")]
    if parts and parts[0] in _PRIVATE:
        raise UnsafePathError(f"{what} {rel!r} is sharin's or git's own; it cannot be reached here")
    return resolve_inside(
        root, "/".join(parts), Bounds.of(root), what=what, named_ok=False, empty_ok=True
    )


def _chunks(f: Any) -> Iterator[bytes]:
    while chunk := f.read(1 << 20):
        yield chunk


def _read_from(path: Path, pos: int, limit: int = 1 << 20) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            return f.read(limit)
    except FileNotFoundError:
        return b""


def _entry(path: Path, name: str) -> dict[str, Any]:
    st = os.lstat(path)
    kind = "link" if os.path.islink(path) else "dir" if path.is_dir() else "file"
    return {"name": name, "type": kind, "size": st.st_size, "mtime": st.st_mtime}


def _write_atomic(target: Path, chunks: Any, limit: int) -> int:
    """Write ``chunks`` (an iterator of bytes) to ``target`` through a temporary file in the same
    directory, renamed over it only when complete and within ``limit``. Directories made for
    it are removed again when it fails."""
    tmp, size, made = _write_temp(target, chunks, limit)
    try:
        os.replace(tmp, target)
    except BaseException:
        _discard_temp(tmp, made)
        raise
    return size


def _write_temp(target: Path, chunks: Any, limit: int) -> tuple[str, int, list[Path]]:
    """``chunks`` written to a temporary file beside ``target`` (with its mode, when it is
    there): the file, its size and the directories made for it. On a failure nothing is left."""
    made = [d for d in [target.parent, *target.parent.parents] if not d.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        size = 0
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ProjectError(
                        f"{target.name}: larger than the server's limit of {limit} bytes; "
                        "copy big files into the project directly"
                    )
                f.write(chunk)
        if target.exists():
            shutil.copymode(target, tmp)
    except BaseException:
        _discard_temp(tmp, made)
        raise
    return tmp, size, made


def _discard_temp(tmp: str, made: list[Path]) -> None:
    """Remove a failed write's temporary file (when there is one, and still there) and the
    directories made for it (deepest first), each only while empty."""
    if tmp:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    for d in made:
        with contextlib.suppress(OSError):
            d.rmdir()


def _host_map(text: str | None, known: list[str]) -> dict[str, str]:
    """The ``host_map`` form field of an import: a JSON object from the archive's host labels
    to hosts of this machine."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProjectError(
            "host_map: give a JSON object from each host label of the archive to a host of "
            'this machine, e.g. {"cluster": "localhost"}'
        )
    bad = sorted(f"{k}={v}" for k, v in value.items() if v not in known)
    if bad:
        raise ProjectError(
            f"host_map names hosts this machine does not know: {', '.join(bad)}; use one of: "
            f"{', '.join(known)}"
        )
    return dict(value)


# ---------------------------------------------------------------------- parameter files
#: the component types whose parameter file the parameters endpoints read and write
_PS_TYPES = ("parameterStudy", "bulkjobTask")

#: the fields of a version-2 parameter file, by where they are (WHEEL's editor also writes
#: ``dstNodeName``/``srcNodeName``, the node's path, beside scatter and gather rules)
_PS_FIELDS: dict[str, frozenset[str]] = {
    "": frozenset(
        {"version", "targetFiles", "target_file", "params", "target_param", "scatter", "gather"}
    ),
    "targetFiles": frozenset({"targetName", "targetNode"}),
    "params": frozenset({"keyword", "type", "min", "max", "step", "list", "files"}),
    "scatter": frozenset({"srcName", "dstName", "dstNode", "dstNodeName"}),
    "gather": frozenset({"srcName", "dstName", "srcNode", "srcNodeName"}),
}
_PS_LISTS = {
    "targetFiles": "targetFiles",
    "target_file": "targetFiles",
    "params": "params",
    "target_param": "params",
    "scatter": "scatter",
    "gather": "gather",
}
_RE_FIELD = re.compile(r"([A-Za-z_]\w*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*): (.*)", re.S)


def _ps_unknown_fields(data: dict[str, Any], file: str) -> list[Problem]:
    """A problem for each field a parameter file does not have (WHEEL's fields are listed in
    ``_PS_FIELDS``)."""
    out = []
    for key in data:
        if key not in _PS_FIELDS[""]:
            out.append(
                Problem(
                    file,
                    key,
                    "unknown field of a parameter file; use version, targetFiles, params, "
                    "scatter and gather",
                )
            )
    for key, kind in _PS_LISTS.items():
        items = data.get(key)
        if not isinstance(items, list):
            continue
        known = _PS_FIELDS[kind]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            for field in item:
                if field not in known:
                    out.append(
                        Problem(
                            file,
                            f"{key}[{i}].{field}",
                            f"unknown field; {kind} entries have {', '.join(sorted(known))}",
                        )
                    )
    return out


def _ps_problem(e: ProjectError, file: str) -> Problem:
    """A parse error of a parameter file as a problem naming its field."""
    text = str(e)
    prefix = f"{e.path}: " if e.path is not None else ""
    text = text.removeprefix(prefix)
    m = _RE_FIELD.fullmatch(text)
    return Problem(file, m.group(1), m.group(2)) if m else Problem(file, "", text)


def _ps_check(
    c: Component, data: dict[str, Any], file: str
) -> tuple[list[Problem], list[Problem], int | None]:
    """``(problems, warnings, instances)`` of a parameter file's content for component ``c``:
    problems make it unfit to be written (its fields, the components it names); warnings are
    about the files it names (a target file not there yet), and ``instances`` is the number
    of instances (sub jobs) it makes in the component's directory now, None when unknown."""
    from ...model._paramstudy import (
        check_instance_names,
        count_vectors,
        parse_parameter_setting,
        setting_problems,
    )

    problems = _ps_unknown_fields(data, file)
    try:
        setting = parse_parameter_setting(data, file)
    except ProjectError as e:
        return [*problems, _ps_problem(e, file)], [], None
    study = c.type == "parameterStudy"
    if not study:
        for i, t in enumerate(setting.target_files):
            if t.node is not None:
                key = "targetFiles" if "targetFiles" in data else "target_file"
                problems.append(
                    Problem(
                        file,
                        f"{key}[{i}].targetNode",
                        "a bulkjobTask renders its target files in its own directory; "
                        "leave targetNode empty",
                    )
                )
        for key, rules in (("scatter", setting.scatter), ("gather", setting.gather)):
            if rules:
                problems.append(
                    Problem(
                        file,
                        key,
                        f"a bulkjobTask has no {key} (its sub jobs share its directory); "
                        "remove the rules",
                    )
                )
    else:
        try:
            check_instance_names(setting, c.name)
        except ProjectError as e:
            problems.append(Problem(file, "params", str(e).removeprefix(f"{e.path}: ")))
    node_dirs = {x.id: x.rel[len(c.rel) + 1 :] for x in c.walk()[1:]} if study else {}
    warnings: list[Problem] = []
    for field, message in setting_problems(setting, c.directory, node_dirs):
        (problems if field.endswith("Node") else warnings).append(Problem(file, field, message))
    if problems:
        return problems, warnings, None
    try:
        instances: int | None = count_vectors(setting, c.directory)
    except ProjectError as e:
        instances = None
        warnings.append(_ps_problem(e, file))
    return problems, warnings, instances


# ---------------------------------------------------------------------- app
def create_app(config: ServerConfig) -> Any:
    """The ASGI application (FastAPI wrapped in the token gate)."""
    state = ServerState(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.hub = EventHub(buffer=config.watch_buffer)
        state.prompts = PromptBroker(config.prompt_timeout)
        try:
            yield
        finally:
            state.prompts.close()
            if state.feed is not None:
                await state.feed.close()

    async def publish_edits(conn: HTTPConnection) -> AsyncIterator[None]:
        """Around every request: one that edits a project (an endpoint of ``_EDITS``) and
        succeeds is published to the project's watchers as an ``edit`` (by the client named in
        the ``X-Sharin-Client`` header)."""
        what = _EDITS.get(getattr(conn.scope.get("route"), "name", ""))
        pid = conn.path_params.get("pid")
        dry = conn.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        if what is None or dry or not isinstance(pid, str) or conn.scope["type"] != "http":
            yield
            return
        try:
            root = await asyncio.to_thread(state.root, pid)
        except NotFound:
            yield  # the endpoint says so
            return
        with feed().editing(root):
            yield  # an endpoint that fails raises here: nothing is published
        by = conn.headers.get(CLIENT_HEADER)
        cid = conn.path_params.get("cid")
        hub().edited(
            root,
            what,
            component=cid if isinstance(cid, str) else None,
            by=by if by is not None and _CLIENT_ID.fullmatch(by) else None,
            moved=state.renamed.pop(pid, None),
        )

    app = FastAPI(
        title="sharin",
        version="1",
        description="The API of sharin's browser UI. Every request needs the server's token.",
        lifespan=lifespan,
        dependencies=[Depends(publish_edits)],
    )
    app.state.sharin = state

    def hub() -> EventHub:
        if state.hub is None:  # the lifespan did not run (an embedding without it)
            state.hub = EventHub(buffer=config.watch_buffer)
        return state.hub

    def feed() -> JournalFeed:
        if state.feed is None:
            state.feed = JournalFeed(hub())
        return state.feed

    def prompts() -> PromptBroker:
        if state.prompts is None:
            state.prompts = PromptBroker(config.prompt_timeout)
        return state.prompts

    # ------------------------------------------------------------ errors
    @app.exception_handler(SharinError)
    async def sharin_error(_r: Request, e: SharinError) -> JSONResponse:
        status = 400
        if isinstance(e, NotFound):
            status = 404
        elif isinstance(e, BusyError):
            status = 409
        elif isinstance(e, UnsafePathError):
            status = 403
        body: dict[str, Any] = {"error": str(e)}
        if isinstance(e, ValidationError):
            body["problems"] = [_plain(p) for p in e.problems]
        return JSONResponse(body, status_code=status)

    @app.exception_handler(OSError)
    async def os_error(_r: Request, e: OSError) -> JSONResponse:
        where = f"{e.filename}: " if e.filename else ""
        return JSONResponse({"error": f"{where}{e.strerror or e}"}, status_code=400)

    def project(pid: str) -> Project:
        return api.open_project(state.root(pid))

    def component(p: Project, cid: str) -> Component:
        try:
            return p.component(cid)
        except ProjectError as e:
            raise NotFound(str(e)) from None

    # ------------------------------------------------------------ projects
    @app.get("/api/projects")
    def list_projects() -> list[dict[str, Any]]:
        out = []
        for pid, root in state.roots().items():
            try:
                _, name, st = model.project_header(root)
            except SharinError as e:
                out.append(
                    {
                        "id": pid,
                        "name": root.name,
                        "root": str(root),
                        "state": "broken",
                        "error": str(e),
                    }
                )
                continue
            out.append({"id": pid, "name": name, "root": str(root), "state": st})
        return out

    @app.post("/api/projects", status_code=201)
    def new_project(body: NewProject) -> dict[str, Any]:
        problem = name_problem(body.name)
        if problem is not None or "/" in body.name.replace("\\", "/") or body.name.startswith("."):
            raise ProjectError(
                f"project name {body.name!r} {problem or 'must be one plain name'}; use letters, "
                "digits, '_' and '-'"
            )
        if not model.is_valid_name(body.name.removesuffix(".wheel")):
            raise ProjectError(f"project name {body.name!r}: use letters, digits, '_' and '-'")
        p = api.new_project(state.workspace / body.name, body.description)
        return _project_json(state.add(p.root), p)

    @app.post("/api/projects/open")
    def open_existing(body: OpenProject) -> dict[str, Any]:
        root = model.find_project_root(Path(os.path.expanduser(body.path)))
        pid = state.add(root)
        return _project_json(pid, project(pid))

    @app.post(
        "/api/projects/import",
        status_code=201,
        responses={409: {"description": "the archive names hosts to map (`unknown_hosts`)"}},
    )
    def import_archive(
        archive: Annotated[UploadFile, File()],
        host_map: Annotated[str | None, Form()] = None,
    ) -> Any:
        """Import a WHEEL archive. Host labels it uses that this machine does not know must be
        mapped: without a mapping for each, the answer is 409 with ``unknown_hosts`` and the
        ``hosts`` to choose from, and nothing is imported; ``host_map`` (a JSON object, label
        to host) maps them."""
        known = ["localhost", *(h.config.name for h in api.host_entries())]
        mapping = _host_map(host_map, known)
        unknown: list[str] = []

        def ask_host(label: str, _files: list[str]) -> str:
            unknown.append(label)
            return ""  # unmapped: the import stops before writing anything

        with tempfile.TemporaryDirectory(prefix="sharin-upload-") as tmp:
            name = os.path.basename(archive.filename or "upload.tgz") or "upload.tgz"
            src = Path(tmp) / name
            _write_atomic(src, _chunks(archive.file), config.upload_limit)
            try:
                p = api.import_project(src, state.workspace, host_map=mapping, ask_host=ask_host)
            except ProjectError:
                if not unknown:
                    raise
                error = (
                    f"the archive uses hosts this machine does not know: {', '.join(unknown)}; "
                    f"send host_map mapping each to one of: {', '.join(known)}"
                )
                return JSONResponse(
                    {"error": error, "unknown_hosts": unknown, "hosts": known}, status_code=409
                )
        return _project_json(state.add(p.root), p)

    @app.get("/api/projects/{pid}")
    def get_project(pid: str) -> dict[str, Any]:
        return _project_json(pid, project(pid))

    @app.post("/api/projects/{pid}/rename")
    def rename_project(pid: str, body: Rename) -> dict[str, Any]:
        """Rename the project: its name and its directory ``<name>.wheel`` (its id changes)."""
        root = state.root(pid)
        name = body.name.removesuffix(".wheel")
        if not model.is_valid_name(name):
            raise ProjectError(f"project name {body.name!r}: use letters, digits, '_' and '-'")
        new = root.parent / f"{name}.wheel"
        if new.exists() and new != root:
            raise ProjectError(f"{new} exists already; choose another name")
        with model.edit_lock(root):  # refused while a run holds the project
            p = Project.open(root)
            p.data["name"] = name
            p.write_project()
            p.root_component.data["name"] = name
            p.write_component(p.root_component)
        if new != root:
            os.rename(root, new)
        state.forget(pid)
        new_pid = state.add(new)
        state.renamed[pid] = new_pid  # told to the tabs of the old id
        return _project_json(new_pid, project(new_pid))

    @app.delete("/api/projects/{pid}")
    def delete_project(pid: str, confirm: Annotated[str, Query()] = "") -> dict[str, Any]:
        root = state.root(pid)
        _, name, _ = model.project_header(root)
        if confirm != name:
            raise ProjectError(
                f"deleting {name!r} removes its directory {root} and everything in it; "
                f"send confirm={name} to do so"
            )
        if api.engine_pid(root) is not None:
            raise BusyError(f"{root}: cannot delete the project while it runs; stop it first")
        shutil.rmtree(root)
        state.forget(pid)
        return {"deleted": str(root)}

    @app.get("/api/projects/{pid}/export")
    def export(pid: str) -> FileResponse:
        p = project(pid)
        out = Path(tempfile.mkdtemp(prefix="sharin-export-"))
        path = api.export_project(p, out)
        return FileResponse(path, filename=path.name, media_type="application/gzip")

    # ------------------------------------------------------------ components and edges
    @app.post("/api/projects/{pid}/components", status_code=201)
    def add_component(pid: str, body: NewComponent) -> dict[str, Any]:
        p = project(pid)
        parent = component(p, body.parent) if body.parent else None
        props: dict[str, Any] = {}
        if body.pos is not None:
            props["pos"] = body.pos
        c = api.add_component(p, body.type, body.name, parent=parent, **props)
        return _component_json(c)

    @app.get("/api/projects/{pid}/components/{cid}")
    def get_component(pid: str, cid: str) -> dict[str, Any]:
        return _component_json(component(project(pid), cid))

    @app.patch("/api/projects/{pid}/components/{cid}")
    def set_properties(pid: str, cid: str, body: Properties) -> dict[str, Any]:
        p = project(pid)
        c = component(p, cid)
        api.set_properties(p, c.id, body.properties)  # all of them or none
        return _component_json(component(project(pid), cid))

    @app.delete("/api/projects/{pid}/components/{cid}")
    def remove_component(pid: str, cid: str, confirm: bool = False) -> dict[str, Any]:
        p = project(pid)
        c = component(p, cid)
        preview = api.removal_preview(p, c)
        if preview.files and not confirm:
            raise ProjectError(
                f"{c.rel} holds files of yours ({', '.join(preview.files[:5])}"
                f"{' …' if len(preview.files) > 5 else ''}); send confirm=true to remove them"
            )
        return _plain(api.remove_component(p, c, force=True))  # type: ignore[no-any-return]

    @app.post("/api/projects/{pid}/links", status_code=201)
    def connect(pid: str, body: FlowEdge) -> dict[str, str]:
        api.connect(project(pid), body.src, body.dst, else_=body.else_)
        return {"src": body.src, "dst": body.dst}

    @app.delete("/api/projects/{pid}/links")
    def disconnect(
        pid: str, src: str, dst: str, else_: Annotated[bool, Query(alias="else")] = False
    ) -> dict[str, str]:
        api.disconnect(project(pid), src, dst, else_=else_)
        return {"src": src, "dst": dst}

    @app.post("/api/projects/{pid}/file-links", status_code=201)
    def connect_files(pid: str, body: FileEdge) -> dict[str, str]:
        api.connect_files(project(pid), body.src, body.src_name, body.dst, body.dst_name)
        return body.model_dump()

    @app.delete("/api/projects/{pid}/file-links")
    def disconnect_files(
        pid: str, src: str, src_name: str, dst: str, dst_name: str
    ) -> dict[str, str]:
        api.disconnect_files(project(pid), src, src_name, dst, dst_name)
        return {"src": src, "src_name": src_name, "dst": dst, "dst_name": dst_name}

    @app.get("/api/projects/{pid}/validate")
    def validate(pid: str) -> list[dict[str, Any]]:
        return [_plain(x) for x in api.validate(project(pid))]

    # ------------------------------------------------------------ parameter files
    def ps_component(pid: str, cid: str) -> tuple[Project, Component, str, Path]:
        """The component, its parameter file's path in the project and on disk."""
        p = project(pid)
        c = component(p, cid)
        if c.type not in _PS_TYPES:
            raise ProjectError(
                f"{c.rel} is a {c.type}; only a parameterStudy and a bulkjobTask have a "
                "parameter file"
            )
        name = c.data.get("parameterFile") or model.PARAMETER_FILE
        if not isinstance(name, str):
            raise ProjectError(
                f"{c.rel}/cmp.wheel.json [parameterFile]: must be a file name; set it first"
            )
        problem = name_problem(name)  # the rule validation and the engine apply to it
        if problem is not None:
            raise UnsafePathError(
                f"{c.rel}/cmp.wheel.json [parameterFile]: {name!r} {problem}; set it to a file "
                "name inside the component's directory"
            )
        rel = f"{c.rel}/{name}" if c.rel else name
        return p, c, rel, _inside(p.root, rel, what="parameter file")

    def ps_answer(
        c: Component, rel: str, path: Path, data: dict[str, Any], *, exists: bool
    ) -> dict[str, Any]:
        problems, warnings, instances = _ps_check(c, data, rel)
        return {
            "component": c.id,
            "type": c.type,
            "file": rel,
            "exists": exists,
            "used": c.type == "parameterStudy" or c.data.get("usePSSettingFile", True) is not False,
            "setting": data,
            "instances": instances,
            "problems": [_plain(x) for x in problems],
            "warnings": [_plain(x) for x in warnings],
        }

    @app.get("/api/projects/{pid}/components/{cid}/parameters")
    def get_parameters(pid: str, cid: str) -> dict[str, Any]:
        """A parameter study's (or bulk job's) parameter file as it is written (WHEEL's form),
        with the number of instances it makes and what is wrong with it; a missing file is an
        empty setting."""
        _, c, rel, path = ps_component(pid, cid)
        if not path.exists():
            empty = {"version": 2, "targetFiles": [], "params": [], "scatter": [], "gather": []}
            return ps_answer(c, rel, path, empty, exists=False)
        return ps_answer(c, rel, path, read_json_object(path), exists=True)

    @app.put("/api/projects/{pid}/components/{cid}/parameters")
    def put_parameters(
        pid: str,
        cid: str,
        setting: Annotated[dict[str, Any], Body()],
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Check a parameter file's content (every problem a 400 naming its field, nothing
        written) and write it to the component's parameter file atomically, refused while the
        project runs; ``dry_run`` only checks it and counts the instances."""
        p, c, rel, path = ps_component(pid, cid)
        problems, _, _ = _ps_check(c, setting, rel)
        if problems:
            raise ValidationError(problems)
        if dry_run:
            return ps_answer(c, rel, path, setting, exists=path.exists())
        with model.edit_lock(p.root):  # refused while a run holds the project
            if path.exists():
                try:
                    read_json_object(path)
                except ProjectError as e:
                    raise ProjectError(
                        f"{e}; it was not replaced: fix or remove it in the file view first"
                    ) from None
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, setting)
        return ps_answer(c, rel, path, setting, exists=True)

    # ------------------------------------------------------------ versions
    @app.post("/api/projects/{pid}/save")
    def save(pid: str, body: SaveRequest) -> dict[str, bool]:
        return {"saved": api.save(project(pid), body.message)}

    @app.post("/api/projects/{pid}/revert")
    def revert(pid: str) -> dict[str, list[str]]:
        return {"reverted": api.revert(project(pid))}

    @app.get("/api/projects/{pid}/unsaved")
    def unsaved(pid: str) -> dict[str, list[str]]:
        return {"unsaved": api.unsaved_changes(project(pid))}

    @app.post("/api/projects/{pid}/clean")
    def clean(pid: str, body: CleanRequest) -> dict[str, Any]:
        return _plain(api.clean(project(pid), body.component, unsaved=body.unsaved))  # type: ignore[no-any-return]

    # ------------------------------------------------------------ runs
    @app.post("/api/projects/{pid}/run", status_code=202)
    async def run(pid: str, body: RunRequest) -> dict[str, Any]:
        from ...engine import RunOptions

        root = state.root(pid)
        handle = await api.start_run(
            root,
            options=RunOptions(resume=not body.restart, keep_going=body.keep_going),
            ask=prompts().asker(hub().name(root)),  # SSH prompts: asked in the project's tabs
        )
        hub().attach(handle.events, root)
        return {"project": pid, "started": True}

    @app.post("/api/projects/{pid}/stop")
    async def stop(pid: str) -> dict[str, bool]:
        return {"stopped": await api.stop_async(state.root(pid))}

    @app.get("/api/projects/{pid}/status")
    def status(pid: str, run: int | None = None) -> dict[str, Any]:
        s = api.status(state.root(pid), run)
        return {**_plain(s), "interrupted": s.interrupted}

    @app.get("/api/projects/{pid}/runs")
    def runs(pid: str) -> list[dict[str, Any]]:
        root = state.root(pid)
        counts = api.run_task_counts(root)  # tasks ended in each state, every run in one query
        return [{**_plain(r), "tasks": counts.get(r.id, {})} for r in api.runs(root)]

    @app.get("/api/projects/{pid}/tasks", response_class=JSONResponse)
    def tasks(pid: str, run: int | None = None) -> Response:
        """The list view's rows: every component, loop trip and parameter-study instance of
        a run (default: the last), with state, host, job id and times (epoch seconds)."""
        import msgspec

        from ._tasks import task_rows

        # encoded at once: tens of thousands of rows through FastAPI's encoder take seconds
        body = msgspec.json.encode(task_rows(project(pid), run))
        return Response(body, media_type="application/json")

    @app.get("/api/projects/{pid}/logs/{key:path}")
    def log(
        pid: str,
        key: str,
        stream: Annotated[str, Query(pattern="^(out|err)$")] = "out",
        run: int | None = None,
    ) -> Response:
        out, err = api.log_paths(state.root(pid), key, run)
        path = out if stream == "out" else err
        data = path.read_bytes() if path.exists() else b""
        return Response(data, media_type="text/plain; charset=utf-8")

    @app.get("/api/projects/{pid}/engine-log")
    def engine_log(pid: str) -> Response:
        from ...engine._layout import RunLayout

        path = RunLayout(state.root(pid)).dir / "engine.log"
        data = path.read_bytes() if path.exists() else b""
        return Response(data, media_type="text/plain; charset=utf-8")

    @app.websocket("/api/projects/{pid}/events")
    async def events(ws: WebSocket, pid: str) -> None:
        try:
            root = state.root(pid)
        except NotFound:
            await ws.close(code=1008, reason="no such project")
            return
        await ws.accept()
        await feed().sync(root)  # the last run's states, when no engine here runs it
        snap, watcher = hub().watch(root)
        await feed().follow(root)  # and a run of another process's engine, and outside edits
        sending = asyncio.Lock()  # the changes and the prompts take turns on the socket
        asks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def send(message: dict[str, Any]) -> None:
            async with sending:
                await ws.send_json(message)

        async def pump() -> None:
            await send(_snapshot_json(snap))
            while (got := await watcher.next()) is not None:
                await send(_snapshot_json(got) if isinstance(got, Snapshot) else _change_json(got))

        async def prompting() -> None:  # the SSH prompts of this project's runs, and their end
            while True:
                await send(await asks.get())

        async def until_gone() -> None:
            while (m := await ws.receive())["type"] != "websocket.disconnect":
                text = m.get("text")
                if text:  # a prompt's answer or cancel; anything else is not needed
                    with contextlib.suppress(ValueError, RecursionError):
                        prompts().reply(watcher.project, json.loads(text))

        detach = prompts().attach(watcher.project, asks.put_nowait)
        tasks = [
            asyncio.ensure_future(pump()),
            asyncio.ensure_future(prompting()),
            asyncio.ensure_future(until_gone()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            detach()
            watcher.close()  # a client gone is forgotten at once, not at the next change
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await t

    @app.websocket("/api/projects/{pid}/log-follow")
    async def follow_log(
        ws: WebSocket, pid: str, key: str, stream: str = "out", run: int | None = None
    ) -> None:
        """A task's stdout (``stream=err``: stderr) as it grows: ``{"type": "data", "text"}``
        messages, then ``{"type": "end"}`` once the task (or the run) ended and all was sent."""
        try:
            root = state.root(pid)
        except NotFound:
            await ws.close(code=1008, reason="no such project")
            return
        await ws.accept()
        try:
            if stream not in ("out", "err"):
                raise ProjectError(f"stream {stream!r}: use out or err")
            out, err = await asyncio.to_thread(api.log_paths, root, key, run, pending=True)
        except SharinError as e:
            await ws.send_json({"type": "error", "error": str(e)})
            await ws.close()
            return
        path = out if stream == "out" else err
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pos = 0
        try:
            while True:
                data = await asyncio.to_thread(_read_from, path, pos)
                if data:
                    pos += len(data)
                    await ws.send_json({"type": "data", "text": decoder.decode(data)})
                    continue
                last = hub().last(root, key)
                ended = (last is not None and last.state not in _LIVE) or (
                    await asyncio.to_thread(api.engine_pid, root) is None
                )
                if ended:
                    data = await asyncio.to_thread(_read_from, path, pos)
                    if not data:
                        tail = decoder.decode(b"", final=True)
                        if tail:
                            await ws.send_json({"type": "data", "text": tail})
                        await ws.send_json({"type": "end"})
                        await ws.close()
                        return
                    continue
                await asyncio.sleep(0.2)
        except (WebSocketDisconnect, RuntimeError):
            pass

    @app.get("/api/projects/{pid}/viewer/{cid}")
    def viewer(pid: str, cid: str) -> dict[str, list[str]]:
        """The images a viewer component shows, as paths in the project (read them through
        ``files/content``)."""
        p = project(pid)
        c = component(p, cid)
        root = os.path.realpath(p.root)
        images = []
        for img in api.viewer_images(p, c):
            real = os.path.realpath(img)
            if real.startswith(root + os.sep):
                images.append(os.path.relpath(real, root))
        return {"images": images}

    # ------------------------------------------------------------ files
    @app.get("/api/projects/{pid}/files")
    def list_files(pid: str, path: str = "") -> dict[str, Any]:
        root = state.root(pid)
        where = _inside(root, path)
        if not where.is_dir():
            return {"path": path, **_entry(where, where.name)}
        entries = []
        for e in sorted(os.scandir(where), key=lambda x: x.name):
            if not path and e.name in _PRIVATE:
                continue
            entries.append(_entry(Path(e.path), e.name))
        return {"path": path, "type": "dir", "entries": entries}

    @app.get("/api/projects/{pid}/files/content")
    def read_file(pid: str, path: str) -> FileResponse:
        where = _inside(state.root(pid), path)
        if not where.is_file():
            raise NotFound(f"{path}: no such file in the project")
        return FileResponse(where, filename=where.name)

    @app.put("/api/projects/{pid}/files/content")
    async def write_file(pid: str, path: str, request: Request) -> dict[str, Any]:
        root = state.root(pid)
        where = await asyncio.to_thread(_inside, root, path)
        if not path or where.is_dir():
            raise ProjectError(f"{path!r} is a directory; give the file's path")
        if api.engine_pid(root) is not None:
            raise BusyError(f"{root}: cannot change files while the project runs; stop it first")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > config.upload_limit:
                raise ProjectError(
                    f"{path}: larger than the server's limit of {config.upload_limit} bytes"
                )
        size = await asyncio.to_thread(
            _write_atomic, where, iter([bytes(data)]), config.upload_limit
        )
        return {"path": path, "size": size}

    @app.post("/api/projects/{pid}/files/upload", status_code=201)
    def upload(
        pid: str, files: Annotated[list[UploadFile], File()], path: str = ""
    ) -> dict[str, Any]:
        root = state.root(pid)
        _inside(root, path)  # the directory itself must be inside
        if api.engine_pid(root) is not None:
            raise BusyError(f"{root}: cannot change files while the project runs; stop it first")
        done: list[dict[str, Any]] = []
        # every file written aside first, then all put in place: one refused changes none
        written: list[tuple[Path, str, int, list[Path]]] = []
        try:
            for f in files:
                name = os.path.basename((f.filename or "").replace("\\", "/"))
                target = _inside(root, f"{path}/{name}" if path else name, what="upload")
                if not name or target.is_dir():
                    raise ProjectError(f"upload {f.filename!r}: give a file name")
                written.append((target, *_write_temp(target, _chunks(f.file), config.upload_limit)))
            for target, tmp, size, _ in written:
                os.replace(tmp, target)
                done.append({"path": os.path.relpath(target, root), "size": size})
        except BaseException:
            # a file already in place is not undone; its temporary file is gone, and the
            # directory it is in is no longer empty, so nothing of it is removed here
            for _, tmp, _, made in reversed(written):
                _discard_temp(tmp, made)
            raise
        return {"uploaded": done}

    # ------------------------------------------------------------ hosts
    @app.get("/api/hosts")
    def hosts() -> list[dict[str, Any]]:
        return [_plain(h) for h in api.host_entries()]

    @app.post("/api/hosts", status_code=201)
    def add_host(entry: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        cfg = api.add_host(entry)
        return {"name": cfg.name}

    @app.put("/api/hosts/{name}")
    def replace_host(name: str, entry: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Replace a host's entry (WHEEL's field names, as for adding one); ``name`` in the
        entry may rename it."""
        if all(h.config.name != name for h in api.host_entries()):
            raise NotFound(f"no host {name!r} in remotehost.json; add it first")
        cfg = api.replace_host(name, entry)
        return {"name": cfg.name}

    @app.websocket("/api/hosts/{name}/test")
    async def test_host(ws: WebSocket, name: str) -> None:
        """Connect to a host and report (``{"type": "result", ...}`` or ``{"type": "error"}``).
        A passphrase, password or one-time code the host asks for is asked of the client —
        ``{"type": "ask", "prompt", "echo"}``, answered by ``{"type": "answer", "text"}`` — and
        never stored."""
        await ws.accept()
        loop = asyncio.get_running_loop()

        async def ask_client(prompt: str, echo: bool) -> str:
            await ws.send_json({"type": "ask", "prompt": prompt, "echo": echo})
            while True:
                m = await ws.receive_json()
                if m.get("type") == "answer" and isinstance(m.get("text"), str):
                    return str(m["text"])

        def ask(prompt: str, echo: bool) -> str:  # in the check's thread
            return asyncio.run_coroutine_threadsafe(ask_client(prompt, echo), loop).result(300)

        try:
            found = await asyncio.to_thread(api.check_host, name, ask=ask)
        except SharinError as e:
            await ws.send_json({"type": "error", "error": str(e)})
        except (WebSocketDisconnect, TimeoutError):
            return
        else:
            await ws.send_json({"type": "result", **_plain(found)})
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close()

    @app.delete("/api/hosts/{name}")
    def remove_host(name: str) -> dict[str, str]:
        return {"removed": str(api.remove_host(name))}

    add_static_routes(app)  # after every API route: the browser UI at `/`
    return TokenGate(
        app,
        config.token,
        hosts=("127.0.0.1", "localhost", "::1", "[::1]", *config.hosts),
        origins=config.allowed_origins,
    )


def serve(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 0, open_browser: bool = True
) -> None:
    """Run the server until interrupted; prints the URL with the token."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections wait from now on, before the URL is printed
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown}:{port}/?token={config.token}"
    app = create_app(config)
    if host not in ("127.0.0.1", "localhost", "::1"):
        assert isinstance(app, TokenGate)
        app.hosts.add("*")
    print(f"sharin UI: {url}", flush=True)
    if open_browser:
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
    # a stop (Ctrl-C, SIGTERM) closes open WebSockets after 5 s; runs started here are stopped
    # (and resumed by the next `sharin run`) when the process ends
    uvicorn.run(app, fd=sock.fileno(), log_level="warning", timeout_graceful_shutdown=5)
