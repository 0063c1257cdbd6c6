"""Components that steer a run rather than run a script: if, loops, parameter study, source,
viewer and storage (WHEEL's semantics, with the differences noted in the model's modules).

* **if** evaluates its ``condition`` (a script in its directory, exit 0 = true, or an expression
  in sharin's safe condition language) and releases its ``next`` or its ``else`` components;
  the other branch is skipped, and so is everything that depends only on skipped components.
* **for / foreach / while** run their children once per trip, one trip after another, each trip
  in ``<name>_<index>`` (a copy of the previous trip, the first one a copy of the loop's own
  directory) with ``WHEEL_*`` variables set. ``break`` / ``continue`` children end the loop or
  the trip when their condition holds. After the last trip its files are copied back into the
  loop's directory, where components after the loop find them. ``keep`` prunes old trips.
* **parameterStudy** expands ``parameterSetting.json`` lazily and runs its instances in
  parallel (at most ``launch_window`` at once, so 10,000 instances use flat memory), renders
  target files with Jinja2 (no HTML escaping), scatters and gathers files.
* Every trip and instance is journaled, so a resumed run skips finished ones and never evaluates
  a ``while`` condition again for a trip that ran.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RunError, SharinError
from ..model import (
    COMPONENT_FILE,
    PARAMETER_FILE,
    STATUS_FILE,
    Component,
    ComponentType,
    ExpressionError,
    LoopTrip,
    ParameterSetting,
    ParamVector,
    State,
    copy_exclusions,
    copy_pairs,
    evaluate,
    expand_space,
    for_trips,
    foreach_trips,
    instance_env,
    instance_name,
    is_true,
    load_parameter_setting,
    looks_like_script_name,
    render_template,
    resolve_gather,
    resolve_scatter,
    while_trip,
    write_json_atomic,
)
from ._files import storage_path

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "IMAGE_SUFFIXES",
    "TripControl",
    "condition_true",
    "run_if",
    "run_jump",
    "run_loop",
    "run_ps",
    "run_source",
    "run_storage",
    "run_viewer",
    "storage_path",
    "viewer_files",
]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".svg", ".webp", ".apng", ".avif", ".tif", ".tiff"}
)


@dataclass
class TripControl:
    """What ``break`` and ``continue`` tell the loop trip they are in."""

    stop: bool = False  #: start no more components in this trip
    broke: bool = False  #: and end the loop after it


def parent_key(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


def child_key(pkey: str, name: str) -> str:
    return f"{pkey}/{name}" if pkey else name


async def condition_true(cond: str, cdir: Path, env: Mapping[str, str]) -> bool:
    """WHEEL's condition: a script in ``cdir`` (exit 0 = true) or a safe expression over ``env``."""
    text = cond.strip()
    if not text:
        raise RunError(f"{cdir}: the condition is empty; set a script name or an expression")
    script = cdir / text
    if "/" not in text.strip("./") and script.is_file():
        mode = script.stat().st_mode
        if mode & 0o111 != 0o111:
            script.chmod(mode | 0o111)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            './"$1"',
            "sh",
            text,
            cwd=cdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return await proc.wait() == 0
    try:
        return is_true(evaluate(text, env))
    except ExpressionError as e:
        if looks_like_script_name(text):
            raise RunError(
                f"condition {text!r} is neither a script in {cdir} nor an expression ({e.reason}); "
                "create the script or fix the condition"
            ) from None
        raise


def _transient(name: str) -> bool:
    """A temporary file of an atomic JSON write (``write_json_atomic``): the state mirror
    thread may be writing a component's JSON in a directory while it is copied, and the file
    is gone (renamed) by the time the copy reaches it."""
    return _ATOMIC_TMP.fullmatch(name) is not None


_ATOMIC_TMP = re.compile(r"\.tmp-\w+\.json")  # tempfile.mkstemp(prefix=".tmp-", suffix=".json")


def _copy_tree(src: Path, dst: Path, *, skip_component_files: bool) -> None:
    """Copy a directory, following symbolic links (as WHEEL copies loop trips)."""

    def ignore(d: str, names: list[str]) -> set[str]:
        out = {n for n in names if n == ".sharin" or _transient(n)}
        if skip_component_files:
            out.update(n for n in names if n in (COMPONENT_FILE, STATUS_FILE))
        return out

    shutil.copytree(src, dst, symlinks=False, ignore=ignore, dirs_exist_ok=True)


def _mark_instance(template: Component, idir: Path) -> None:
    """An instance directory's own JSON says ``subComponent`` so that it is not read as a component."""
    data = dict(template.data)
    data["subComponent"] = True
    data["state"] = State.NOT_STARTED.value
    write_json_atomic(idir / COMPONENT_FILE, data)


def _copy_path(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        tmp = dst.with_name(f".{dst.name}.sharin-tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


# The handlers below are called by the engine with itself as ``self``.


# ------------------------------------------------------------------ if
async def run_if(self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]) -> str:
    persist = cdir == c.directory
    prev = self._finished_before(c, key)
    if prev is not None:
        self._branches[key] = prev.message != "else"
        return State.FINISHED.value
    self._record(c, key, State.RUNNING, persist=persist, started=True)
    try:
        self._deliver_inputs(c, cdir)
        full = {**env, **c.env}
        taken = await condition_true(str(c.data.get("condition") or ""), cdir, full)
    except SharinError as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, f"condition: {e}")
    self._branches[key] = taken
    self._record(
        c, key, State.FINISHED, persist=persist, ended=True, message="next" if taken else "else"
    )
    return State.FINISHED.value


# ------------------------------------------------------------------ break / continue
async def run_jump(
    self: Engine,
    c: Component,
    cdir: Path,
    key: str,
    env: Mapping[str, str],
    ctx: TripControl | None,
) -> str:
    persist = cdir == c.directory
    self._record(c, key, State.RUNNING, persist=persist, started=True)
    try:
        if ctx is None:
            raise RunError(f"{c.rel}: {c.type} must sit directly inside a for, foreach or while")
        self._deliver_inputs(c, cdir)
        hit = await condition_true(str(c.data.get("condition") or ""), cdir, {**env, **c.env})
    except SharinError as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, f"condition: {e}")
    if hit and ctx is not None:
        ctx.stop = True
        ctx.broke = ctx.broke or c.type == ComponentType.BREAK
    self._record(
        c, key, State.FINISHED, persist=persist, ended=True, message=c.type if hit else None
    )
    return State.FINISHED.value


# ------------------------------------------------------------------ loops
def loop_trips(c: Component) -> Iterator[LoopTrip] | None:
    if c.type == ComponentType.FOR:
        return for_trips(c.name, c.data.get("start"), c.data.get("end"), c.data.get("step"))  # type: ignore[arg-type]
    if c.type == ComponentType.FOREACH:
        return foreach_trips(c.name, c.data.get("indexList"))
    return None  # while: one trip at a time, after its condition


async def run_loop(self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]) -> str:
    persist = cdir == c.directory
    if self._finished_before(c, key) is not None:
        return State.FINISHED.value
    self._record(c, key, State.RUNNING, persist=persist, started=True)
    try:
        self._deliver_inputs(c, cdir)
        trips = loop_trips(c)
    except SharinError as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, str(e))
    pkey, pdir = parent_key(key), cdir.parent
    base_env = {**env, **c.env}
    cond = str(c.data.get("condition") or "")
    keep = c.data.get("keep")
    made: list[Path] = []
    last: Path | None = None
    ok = True
    position = 0
    while not self._halt:
        if trips is None:
            trip = while_trip(c.name, position)
            tkey = child_key(pkey, trip.instance_name)
            if tkey not in self._prev:
                try:
                    if not await condition_true(cond, cdir, {**base_env, **trip.env}):
                        break
                except SharinError as e:
                    return self._finish(c, key, State.FAILED, persist, 0, None, f"condition: {e}")
        else:
            nxt = next(trips, None)
            if nxt is None:
                break
            trip = nxt
            tkey = child_key(pkey, trip.instance_name)
        position += 1
        idir = pdir / trip.instance_name
        tprev = self._prev.get(tkey)
        if tprev is not None and tprev.state == State.FINISHED:
            last = idir
            made.append(idir)
            if tprev.message == "break":
                break
            continue
        if tprev is None or not idir.exists():
            if idir.exists():
                shutil.rmtree(idir)
            _copy_tree(last or cdir, idir, skip_component_files=False)
            _mark_instance(c, idir)
        self._record(c, tkey, State.RUNNING, persist=False, started=True, attempt=position)
        ctx = TripControl()
        trip_ok = await self._run_container(c, idir, tkey, {**base_env, **trip.env}, ctx)
        if self._stopping:
            self._record(c, tkey, State.STOPPED, persist=False, ended=True)
            break
        self._record(
            c,
            tkey,
            State.FINISHED if trip_ok else State.FAILED,
            persist=False,
            ended=True,
            message="break" if ctx.broke else None,
        )
        last = idir
        made.append(idir)
        if isinstance(keep, int) and keep > 0:
            for old in made[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
            made = made[-keep:]
        if not trip_ok:
            ok = False
            break
        if ctx.broke:
            break
    if self._stopping:
        self._record(c, key, State.STOPPED, persist=persist, ended=True)
        return State.STOPPED.value
    if last is not None and last.exists():
        # the template shows the last trip's results; components after the loop read them
        _copy_tree(last, cdir, skip_component_files=True)
    if keep == 0:
        for old in made:
            shutil.rmtree(old, ignore_errors=True)
    if self._halt and ok and not self._stopping:
        ok = False  # a failure elsewhere stopped the run before the loop could finish
    state = State.FINISHED if ok else State.FAILED
    if state == State.FAILED:
        return self._finish(
            c,
            key,
            state,
            persist,
            0,
            None,
            "a trip failed" if not self._halt else "stopped by a failure",
        )
    self._record(c, key, state, persist=persist, ended=True, message=f"{position} trips")
    return state.value


# ------------------------------------------------------------------ parameter study
async def run_ps(self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]) -> str:
    persist = cdir == c.directory
    if self._finished_before(c, key) is not None:
        return State.FINISHED.value
    self._record(c, key, State.RUNNING, persist=persist, started=True)
    node_dirs = {x.id: x.rel[len(c.rel) + 1 :] for x in c.walk()[1:]}
    try:
        self._deliver_inputs(c, cdir)
        setting = load_parameter_setting(cdir / str(c.data.get("parameterFile") or PARAMETER_FILE))
        space = expand_space(setting, cdir)
        excluded = copy_exclusions(setting, cdir, node_dirs)
        # what each instance gets, listed once before any instance runs: files gathered into
        # the study's directory later are not copied into later instances (that would make
        # creating N instances quadratic)
        template = _template_listing(cdir, excluded)
    except SharinError as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, str(e))
    pkey, pdir = parent_key(key), cdir.parent
    base_env = {**env, **c.env}
    force = bool(c.data.get("forceOverwrite"))
    counts = {"finished": 0, "failed": 0}
    window = asyncio.Semaphore(max(1, self.options.launch_window))
    running: set[asyncio.Task[bool]] = set()
    names: list[str] = []

    async def one(vector: ParamVector) -> bool:
        try:
            iname = instance_name(c.name, vector)
            ikey = child_key(pkey, iname)
            idir = pdir / iname
            iprev = self._prev.get(ikey)
            if iprev is not None and iprev.state == State.FINISHED:
                return True
            if iprev is None or not idir.exists():
                if idir.exists() and force:
                    shutil.rmtree(idir)
                make_ps_instance(self, c, cdir, idir, setting, vector, template, node_dirs)
            self._record(c, ikey, State.RUNNING, persist=False, started=True)
            ok = await self._run_container(c, idir, ikey, {**base_env, **instance_env(vector)})
            if ok:
                try:
                    gather(self, setting, vector, idir, cdir, node_dirs)
                except (SharinError, OSError) as e:
                    self._record(
                        c, ikey, State.FAILED, persist=False, ended=True, message=f"gather: {e}"
                    )
                    return False
            self._record(c, ikey, State.FINISHED if ok else State.FAILED, persist=False, ended=True)
            return ok
        finally:
            window.release()

    def done(t: asyncio.Task[bool]) -> None:
        running.discard(t)
        if t.cancelled():
            counts["failed"] += 1
            return
        exc = t.exception()
        if exc is not None:
            self._failed.append(f"{key}: {exc!r}")
        counts["finished" if exc is None and t.result() else "failed"] += 1

    try:
        for vector in space:
            await window.acquire()
            if self._halt:
                window.release()
                break
            if c.data.get("deleteLoopInstance"):
                names.append(instance_name(c.name, vector))
            t = asyncio.ensure_future(one(vector))
            running.add(t)
            t.add_done_callback(done)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    except SharinError as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, str(e))
    c.data.update(numTotal=space.size, numFinished=counts["finished"], numFailed=counts["failed"])
    if self._stopping:
        self._record(c, key, State.STOPPED, persist=persist, ended=True)
        return State.STOPPED.value
    for name in names:
        shutil.rmtree(pdir / name, ignore_errors=True)
    msg = f"{counts['finished']} of {space.size} instances finished"
    if counts["failed"] or counts["finished"] < space.size:
        return self._finish(c, key, State.FAILED, persist, 0, None, msg)
    self._record(c, key, State.FINISHED, persist=persist, ended=True, message=msg)
    return State.FINISHED.value


def _template_listing(cdir: Path, excluded: frozenset[str]) -> tuple[list[str], list[str]]:
    """Directories and files (relative, symbolic links followed) an instance is made of."""
    dirs: list[str] = []
    files: list[str] = []
    for d, subdirs, names in os.walk(cdir, followlinks=True):
        rel = os.path.relpath(d, cdir)
        pre = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        subdirs[:] = [x for x in subdirs if x != ".sharin" and pre + x not in excluded]
        dirs.extend(pre + x for x in subdirs)
        files.extend(pre + n for n in names if pre + n not in excluded and not _transient(n))
    return dirs, files


def make_ps_instance(
    self: Engine,
    c: Component,
    cdir: Path,
    idir: Path,
    setting: ParameterSetting,
    vector: ParamVector,
    template: tuple[list[str], list[str]],
    node_dirs: Mapping[str, str],
) -> None:
    dirs, files = template
    idir.mkdir(exist_ok=True)
    for d in dirs:
        (idir / d).mkdir(exist_ok=True)
    for f in files:
        try:
            shutil.copy(cdir / f, idir / f)  # content and mode (scripts stay executable)
        except FileNotFoundError:
            continue  # a transient file that vanished since the listing
    for target in setting.target_files:
        rel = target.path(node_dirs)
        src = cdir / rel
        try:
            text = src.read_text()
        except OSError as e:
            raise RunError(f"{c.rel}: target file {rel!r} cannot be read ({e})") from None
        out = idir / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_template(text, vector, source=src))
    for f in vector.files:
        _copy_path(cdir / f, idir / f)
    for rule in resolve_scatter(setting, vector):
        dst_dir = idir / node_dirs[rule.node] if rule.node else idir
        for src_path, dst_path in copy_pairs(rule, cdir, dst_dir):
            _copy_path(src_path, dst_path)
    _mark_instance(c, idir)


def gather(
    self: Engine,
    setting: ParameterSetting,
    vector: ParamVector,
    idir: Path,
    cdir: Path,
    node_dirs: Mapping[str, str],
) -> None:
    for rule in resolve_gather(setting, vector):
        src_dir = idir / node_dirs[rule.node] if rule.node else idir
        for src_path, dst_path in copy_pairs(rule, src_dir, cdir):
            _copy_path(src_path, dst_path)


# ------------------------------------------------------------------ source / viewer / storage
async def run_source(
    self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    outs = c.output_files
    name = outs[0].name if outs else ""
    try:
        if not name:
            raise RunError(f"{c.rel}: a source needs one output file name (outputFiles[0].name)")
        target = cdir / name
        if not (target.exists() or target.is_symlink()):
            files = sorted(
                p.name
                for p in cdir.iterdir()
                if p.name not in (COMPONENT_FILE, STATUS_FILE) and not p.name.startswith(".")
            )
            if len(files) != 1:
                what = "no file" if not files else f"{len(files)} files ({', '.join(files)})"
                raise RunError(
                    f"{c.rel}: the source has {what}; put the one file to hand on in {cdir} "
                    f"(or name it {name!r})"
                )
            os.symlink(files[0], target)
    except (SharinError, OSError) as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, str(e))
    self._record(c, key, State.FINISHED, persist=persist, started=True, ended=True)
    return State.FINISHED.value


async def run_viewer(
    self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    try:
        self._deliver_inputs(c, cdir)
    except SharinError as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, str(e))
    images = viewer_files(cdir)
    self._record(
        c,
        key,
        State.FINISHED,
        persist=persist,
        started=True,
        ended=True,
        message=f"{len(images)} image{'s' if len(images) != 1 else ''}",
    )
    return State.FINISHED.value


async def run_storage(
    self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    try:
        store = storage_path(c)
        self._deliver_inputs(c, cdir)
        store.mkdir(parents=True, exist_ok=True)
        for inp in c.input_files:
            src = cdir / inp.name.rstrip("/") if inp.name else cdir
            if not src.exists():
                continue
            if inp.name.endswith("/") or not inp.name:
                for child in src.iterdir():
                    if child.name not in (COMPONENT_FILE, STATUS_FILE):
                        _copy_path(child.resolve(), store / child.name)
            else:
                _copy_path(src.resolve(), store / inp.name)
            if src.is_symlink():
                src.unlink()
    except (SharinError, OSError) as e:
        return self._finish(c, key, State.FAILED, persist, 0, None, str(e))
    self._record(c, key, State.FINISHED, persist=persist, started=True, ended=True)
    return State.FINISHED.value


def viewer_files(directory: Path) -> list[Path]:
    """Image files below a viewer's directory, symbolic links followed, sorted."""
    out = []
    for root, _dirs, files in os.walk(directory, followlinks=True):
        for f in files:
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                out.append(Path(root) / f)
    return sorted(out)
