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
  parallel (at most ``launch_window`` at once, and nothing kept per instance once it ended, so
  100,000 instances use flat memory), renders target files with Jinja2 (no HTML escaping),
  scatters and gathers files.
* Every trip and instance is journaled, so a resumed run skips finished ones and never evaluates
  a ``while`` condition again for a trip that ran.
"""

from __future__ import annotations

import asyncio
import errno
import json
import locale
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RunError, SharinError, describe_error
from ..model import (
    COMPONENT_FILE,
    NEW_FILE_MODE,
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
from ..model._jsonio import current_umask
from ..model._paramstudy import FileRule, _render_name
from ..model._paths import (
    Bounds,
    UnsafePathError,
    check_real,
    condition_script,
    find_root,
    name_problem,
    real_path,
    resolve_inside,
)
from ._context import RunContext, TripControl, start_component
from ._files import check_tree, copy_path, has_magic, storage_path
from ._mirror import DELETE, StateMirror, update_json

if TYPE_CHECKING:
    from ._journal import TaskRecord

__all__ = [
    "IMAGE_SUFFIXES",
    "ENGINE_VARIABLES",
    "TripControl",
    "condition_true",
    "own_env",
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


#: variables the engine sets for every run, trip and instance. WHEEL stores its own in the
#: ``env`` of the components it ran (a loop's last trip is copied back over the loop's template),
#: so the values a project carries are stale: they are dropped before the engine sets its own,
#: as OPEN-WHEEL's ``Dispatcher.setEnv`` drops ``wheelSystemEnv`` (``dispatcher.js``)
ENGINE_VARIABLES = frozenset(
    {
        "WHEEL_CURRENT_INDEX",
        "WHEEL_PREV_INDEX",
        "WHEEL_NEXT_INDEX",
        "WHEEL_FOR_START",
        "WHEEL_FOR_END",
        "WHEEL_FOR_STEP",
        "WHEEL_LOOP_LEN",
        "WHEEL_FOREACH_LEN",
        "WHEEL_PS_PARAM",
        "WHEEL_REMOTE_WORK",
        "WHEEL_LOCAL_PRJDIR",
        "WHEEL_TASK_RT",
        "wheelTaskRT",
        "SHARIN_TASK",
        "SHARIN_ATTEMPT",
        "SHARIN_PROJECT_DIR",
        "SHARIN_RUN_ID",
    }
)
_ENGINE_PREFIXES = ("WHEEL_PS_PARAM_",)


def own_env(c: Component) -> dict[str, str]:
    """A component's ``env`` without the variables the engine sets (see ``ENGINE_VARIABLES``)."""
    return {
        k: v
        for k, v in c.env.items()
        if k not in ENGINE_VARIABLES and not k.startswith(_ENGINE_PREFIXES)
    }


def parent_key(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


def child_key(pkey: str, name: str) -> str:
    return f"{pkey}/{name}" if pkey else name


async def condition_true(cond: str, cdir: Path, env: Mapping[str, str]) -> bool:
    """WHEEL's condition: a script in ``cdir`` (exit 0 = true) or a safe expression over ``env``."""
    text = cond.strip()
    if not text:
        raise RunError(f"{cdir}: the condition is empty; set a script name or an expression")
    try:
        found = condition_script(cdir, text)
    except UnsafePathError as e:
        raise RunError(f"{e}; the condition was not run") from None
    if found is not None:
        script = Path(real_path(found))  # checked: inside the project, links followed
        mode = script.stat().st_mode
        if mode & 0o111 != 0o111:
            script.chmod(mode | 0o111)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            './"$1"',
            "sh",
            os.path.relpath(found, cdir),
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


def _mark_instance(template: Component, idir: Path, fields: Mapping[str, object]) -> None:
    """An instance directory's own JSON: the template's, with ``subComponent`` (so that it is not
    read as a component) and WHEEL's bookkeeping ``fields`` (see :class:`_LoopBook`); the
    components copied into it start over as not-started, as OPEN-WHEEL's ``setComponentStateR``
    resets a new trip."""
    data = dict(template.data)
    data["subComponent"] = True
    data["state"] = State.NOT_STARTED.value
    data.update(fields)
    write_json_atomic(idir / COMPONENT_FILE, data)
    for d, dirs, files in os.walk(idir):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        if d != str(idir) and COMPONENT_FILE in files:
            update_json(Path(d) / COMPONENT_FILE, {"state": State.NOT_STARTED.value})


class _LoopBook:
    """WHEEL's bookkeeping of a loop, written as OPEN-WHEEL writes it (``loopInitialize`` in
    ``loopUtils.js``; ``_loopHandler`` and ``_loopFinalize`` in ``dispatcher.js``), so that the
    task list shows the trips and WHEEL resumes a loop where sharin left it.

    * each trip's ``<name>_<index>/cmp.wheel.json``: ``name`` (the trip's), ``originalName``,
      ``subComponent``, ``initialized``, ``currentIndex`` (this trip), ``prevIndex`` (the trip
      before, if any), ``numTotal`` (for and foreach), ``numFinished``/``numFailed`` so far,
      ``instanceDirSeparator``; then its ``state``;
    * the loop's own file: ``originalName``, ``numTotal``, ``numFinished``, ``numFailed``,
      ``instanceDirSeparator``, and once a trip finished ``initialized`` with ``currentIndex`` =
      the last finished trip and ``prevIndex`` = the one before. WHEEL resumes after
      ``currentIndex`` (OPEN-WHEEL master checks that trip's state, dev2025 the one before it),
      so a stopped or failed loop names its last finished trip; a loop that finished drops
      ``initialized``, ``currentIndex`` and ``prevIndex``, as ``_loopFinalize`` does.
    """

    def __init__(self, run: RunContext, c: Component, cdir: Path) -> None:
        self.mirror = run.mirror
        self.c = c
        self.cdir = cdir
        self.finished = 0
        self.failed = 0
        self.last: int | float | str | None = None  #: index of the last trip that finished
        self.before: int | float | str | None = None
        self.total: int | None = None
        self.begun = False

    def _begin(self, trip: LoopTrip) -> None:
        total = trip.env.get("WHEEL_LOOP_LEN")
        self.total = int(total) if total is not None else None
        fields: dict[str, object] = {
            "originalName": self.c.name,
            "numFinished": 0,
            "numFailed": 0,
            "instanceDirSeparator": "_",
        }
        if self.total is not None:
            fields["numTotal"] = self.total
        self.mirror.set(self.cdir, fields)
        self.begun = True

    def trip_fields(self, trip: LoopTrip) -> dict[str, object]:
        if not self.begun:
            self._begin(trip)
        fields: dict[str, object] = {
            "name": trip.instance_name,
            "originalName": self.c.name,
            "initialized": True,
            "currentIndex": trip.index,
            "numFinished": self.finished,
            "numFailed": self.failed,
            "instanceDirSeparator": "_",
        }
        if self.last is not None:
            fields["prevIndex"] = self.last
        if self.total is not None:
            fields["numTotal"] = self.total
        return fields

    def done(self, trip: LoopTrip, ok: bool) -> None:
        if not self.begun:
            self._begin(trip)
        if not ok:
            self.failed += 1
            self.mirror.set(self.cdir, {"numFailed": self.failed})
            return
        self.finished += 1
        self.before, self.last = self.last, trip.index
        self.mirror.set(
            self.cdir,
            {
                "initialized": True,
                "currentIndex": self.last,
                "prevIndex": self.before if self.before is not None else DELETE,
                "numFinished": self.finished,
            },
        )

    def finish(self) -> None:
        self.mirror.set(
            self.cdir,
            {"initialized": DELETE, "currentIndex": DELETE, "prevIndex": DELETE},
        )


# The handlers below are called by the engine, which is their run context.


# ------------------------------------------------------------------ if
async def run_if(
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    start = await start_component(run, c, cdir, key, failed="condition: ")
    if start.done is not None:
        return start.done
    persist = start.persist
    try:
        full = {**env, **own_env(c)}
        taken = await condition_true(str(c.data.get("condition") or ""), cdir, full)
    except SharinError as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, f"condition: {e}")
    run.set_branch(key, taken)
    run.record(
        c, key, State.FINISHED, persist=persist, ended=True, message="next" if taken else "else"
    )
    return State.FINISHED.value


# ------------------------------------------------------------------ break / continue
async def run_jump(
    run: RunContext,
    c: Component,
    cdir: Path,
    key: str,
    env: Mapping[str, str],
    ctx: TripControl | None,
) -> str:
    # not skipped when it finished before: it decides again for the trip it ends
    start = await start_component(run, c, cdir, key, failed="condition: ", before=False)
    if start.done is not None:
        return start.done
    persist = start.persist
    try:
        if ctx is None:
            raise RunError(f"{c.rel}: {c.type} must sit directly inside a for, foreach or while")
        hit = await condition_true(str(c.data.get("condition") or ""), cdir, {**env, **own_env(c)})
    except SharinError as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, f"condition: {e}")
    if hit and ctx is not None:
        ctx.stop = True
        ctx.broke = ctx.broke or c.type == ComponentType.BREAK
    run.record(c, key, State.FINISHED, persist=persist, ended=True, message=c.type if hit else None)
    return State.FINISHED.value


# ------------------------------------------------------------------ loops
def loop_trips(c: Component) -> Iterator[LoopTrip] | None:
    if c.type == ComponentType.FOR:
        return for_trips(c.name, c.data.get("start"), c.data.get("end"), c.data.get("step"))  # type: ignore[arg-type]
    if c.type == ComponentType.FOREACH:
        return foreach_trips(c.name, c.data.get("indexList"))
    return None  # while: one trip at a time, after its condition


async def run_loop(
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    start = await start_component(run, c, cdir, key)
    if start.done is not None:
        return start.done
    persist = start.persist
    files = run.files
    try:
        # trips are copies with links followed: a link that leaves the project is refused
        await files.call(check_tree, cdir, run.run_bounds())
        trips = loop_trips(c)
    except SharinError as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, str(e))
    pkey, pdir = parent_key(key), cdir.parent
    base_env = {**env, **own_env(c)}
    book = _LoopBook(run, c, cdir)
    cond = str(c.data.get("condition") or "")
    keep = c.data.get("keep")
    made: list[Path] = []
    last: Path | None = None
    ok = True
    position = 0
    wheel_index = _wheel_while_index(run, c, key) if trips is None else None
    #: the trip to make next follows trips that ran before this run: it gets the template
    #: again (edits since the stop take effect), as WHEEL re-syncs it into a restarted trip
    resync = False
    while not run.halted:
        if trips is None:
            trip = while_trip(c.name, position)
            tkey = child_key(pkey, trip.instance_name)
            if wheel_index is not None and position < wheel_index and run.before(tkey) is None:
                # WHEEL recorded that the loop had gone past this trip (its currentIndex)
                position += 1
                idir = pdir / trip.instance_name
                if idir.exists():
                    last = idir
                    made.append(idir)
                resync = True
                continue
            if run.before(tkey) is None:
                try:
                    if not await condition_true(cond, cdir, {**base_env, **trip.env}):
                        break
                except SharinError as e:
                    return run.finish(c, key, State.FAILED, persist, 0, None, f"condition: {e}")
        else:
            nxt = next(trips, None)
            if nxt is None:
                break
            trip = nxt
            tkey = child_key(pkey, trip.instance_name)
        position += 1
        idir = pdir / trip.instance_name
        tprev = run.before(tkey)
        if tprev is not None and tprev.state == State.FINISHED:
            book.done(trip, True)
            last = idir
            made.append(idir)
            resync = True
            if tprev.message == "break":
                break
            continue
        if _remake(run, tprev, tkey) or not idir.exists():
            fields = book.trip_fields(trip)
            again = cdir if resync and last is not None else None
            try:
                await files.call(_make_trip, c, idir, last or cdir, again, fields)
            except OSError as e:
                why = f"trip {trip.instance_name} could not be made: {describe_error(e)}"
                return run.finish(c, key, State.FAILED, persist, 0, None, why)
        resync = False
        run.record(c, tkey, State.RUNNING, persist=False, started=True, attempt=position)
        ctx = TripControl()
        trip_ok = await run.run_container(c, idir, tkey, {**base_env, **trip.env}, ctx)
        if run.stopping:
            run.record(c, tkey, State.STOPPED, persist=False, ended=True)
            break
        run.record(
            c,
            tkey,
            State.FINISHED if trip_ok else State.FAILED,
            persist=False,
            ended=True,
            message="break" if ctx.broke else None,
        )
        book.done(trip, trip_ok)
        last = idir
        made.append(idir)
        if isinstance(keep, int) and keep > 0:
            if made[:-keep]:
                await files.call(_remove_trips, run.mirror, made[:-keep])
            made = made[-keep:]
        if not trip_ok:
            ok = False
            break
        if ctx.broke:
            break
    if run.stopping:
        run.record(c, key, State.STOPPED, persist=persist, ended=True)
        return State.STOPPED.value
    if last is not None:
        # the template shows the last trip's results; components after the loop read them
        try:
            await files.call(_copy_back, last, cdir)
        except OSError as e:
            why = f"the last trip's files could not be copied back: {describe_error(e)}"
            return run.finish(c, key, State.FAILED, persist, 0, None, why)
    if keep == 0 and made:
        await files.call(_remove_trips, run.mirror, made)
    if run.halted and ok and not run.stopping:
        ok = False  # a failure elsewhere stopped the run before the loop could finish
    state = State.FINISHED if ok else State.FAILED
    if state == State.FAILED:
        return run.finish(
            c,
            key,
            state,
            persist,
            0,
            None,
            "a trip failed" if not run.halted else "stopped by a failure",
        )
    book.finish()
    run.record(c, key, state, persist=persist, ended=True, message=f"{position} trips")
    return state.value


def _make_trip(
    c: Component, idir: Path, src: Path, template: Path | None, fields: Mapping[str, object]
) -> None:
    """Make the loop trip ``idir`` anew: a copy of ``src`` (the trip before, or the loop's
    directory), then of ``template`` over it without the components' files (edits to the
    loop since an earlier run), and its own JSON (see :func:`_mark_instance`). On the file
    worker."""
    if idir.exists():
        shutil.rmtree(idir)
    _copy_tree(src, idir, skip_component_files=False)
    if template is not None:
        _copy_tree(template, idir, skip_component_files=True)
    _mark_instance(c, idir, fields)


def _copy_back(last: Path, cdir: Path) -> None:
    """The last trip's files copied into the loop's directory (on the file worker)."""
    if last.exists():
        _copy_tree(last, cdir, skip_component_files=True)


def _remove_trips(mirror: StateMirror, trips: list[Path]) -> None:
    """Remove old loop trips, the state mirror told first (on the file worker)."""
    for old in trips:
        mirror.remove_tree(old)


def _remake(run: RunContext, tprev: TaskRecord | None, tkey: str) -> bool:
    """Whether a loop trip or an instance that did not finish is made again from the template.

    Made again: one this run has no record of (a trip WHEEL left, or a left-over directory),
    and one that was stopped or failed; what ran in it runs again (WHEEL sets a restarted
    trip's components back to not-started). Left as it is: one that was under way when its
    engine died, whose tasks may still run there and are re-attached.
    """
    if tprev is None:
        return True
    if tprev.state in (State.STOPPED, State.FAILED, State.NOT_STARTED):
        run.forget_below(tkey)
        return True
    return False


def _wheel_while_index(run: RunContext, c: Component, key: str) -> int | None:
    """The trip a ``while`` that WHEEL stopped was in (its ``currentIndex``): the trips before
    it ran. None unless the run continues what WHEEL left (not when sharin's journal knows the
    loop, nor on ``--restart``), or when WHEEL recorded no index."""
    if not run.from_wheel or run.before(key) is not None or c.state == State.FINISHED:
        return None
    index = c.data.get("currentIndex")
    if isinstance(index, bool):
        return None
    if isinstance(index, str) and index.strip().isdigit():
        index = int(index)
    return index if isinstance(index, int) and index > 0 else None


# ------------------------------------------------------------------ parameter study
async def run_ps(
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    start = await start_component(run, c, cdir, key)
    if start.done is not None:
        return start.done
    persist = start.persist
    node_dirs = {x.id: x.rel[len(c.rel) + 1 :] for x in c.walk()[1:]}
    try:
        inside = Bounds.of(run.project_root)
        pname = str(c.data.get("parameterFile") or PARAMETER_FILE)
        pfile = resolve_inside(cdir, pname, inside, what="parameter file", named_ok=False)
        setting = load_parameter_setting(pfile)
        for target in setting.target_files:  # read for every instance: inside the project
            rel = target.path(node_dirs)
            check_real(cdir / rel, inside, what="target file", shown=rel, named_ok=False)
        # every instance is a copy of this directory, links followed: none may lead out
        await run.files.call(check_tree, cdir, run.run_bounds())
        space = expand_space(setting, cdir)
        excluded = copy_exclusions(setting, cdir, node_dirs)
        # what each instance gets, listed once before any instance runs: files gathered into
        # the study's directory later are not copied into later instances (that would make
        # creating N instances quadratic)
        template = _template_listing(cdir, excluded)
    except SharinError as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, str(e))
    pkey, pdir = parent_key(key), cdir.parent
    base_env = {**env, **own_env(c)}
    force = bool(c.data.get("forceOverwrite"))
    # WHEEL's bookkeeping of a study (``_PSHandler`` in OPEN-WHEEL's ``dispatcher.js``): the
    # study's file counts its instances as they end; each instance's file is the study's with
    # ``subComponent`` and the counts as they stood when it was made
    progress: dict[str, object] = {
        "initialized": True,
        "numTotal": space.size,
        "numFinished": 0,
        "numFailed": 0,
    }
    run.mirror.set(cdir, progress)
    maker = _InstanceMaker(c, cdir, setting, template, node_dirs, progress)
    gatherer = _Gatherer(run.project_root, setting, cdir, node_dirs, inside)
    counts = {"finished": 0, "failed": 0}
    window = asyncio.Semaphore(max(1, run.launch_window))
    running: set[asyncio.Task[bool]] = set()
    inner = sorted(set(node_dirs.values()))  #: the components of an instance, relative to it
    files = run.files

    async def one(vector: ParamVector) -> bool:
        iname = instance_name(c.name, vector)
        ikey = child_key(pkey, iname)
        try:
            idir = pdir / iname
            iprev = run.before(ikey)
            if iprev is not None and iprev.state == State.FINISHED:
                return True
            remake = _remake(run, iprev, ikey)
            # a stopped or failed instance is made anew; one this run has no record of gets
            # the template over what is there (as WHEEL's rsync)
            fresh = force or (remake and iprev is not None)
            # files are made and gathered by a worker thread: the event loop starts and watches
            # the tasks of other instances meanwhile (creating files is mostly system time)
            await files.call(maker.make, idir, vector, remake, fresh)
            run.record(c, ikey, State.RUNNING, persist=False, started=True)
            ok = await run.run_container(c, idir, ikey, {**base_env, **instance_env(vector)})
            if ok:
                try:
                    await files.call(gatherer, vector, idir)
                except (SharinError, OSError) as e:
                    run.record(
                        c, ikey, State.FAILED, persist=False, ended=True, message=f"gather: {e}"
                    )
                    return False
            run.record(c, ikey, State.FINISHED if ok else State.FAILED, persist=False, ended=True)
            return ok
        finally:
            # journaled: nothing of this instance stays in memory for the rest of the study
            run.release_keys([ikey, *(f"{ikey}/{rel}" for rel in inner)])
            window.release()

    loop = asyncio.get_running_loop()
    counts_due = False

    def write_counts() -> None:
        nonlocal counts_due
        counts_due = False
        run.mirror.set(cdir, {"numFinished": counts["finished"], "numFailed": counts["failed"]})

    def done(t: asyncio.Task[bool]) -> None:
        nonlocal counts_due
        running.discard(t)
        if t.cancelled():
            counts["failed"] += 1
            return
        exc = t.exception()
        if exc is not None:
            run.fail_note(f"{key}: {describe_error(exc)}")
        counts["finished" if exc is None and t.result() else "failed"] += 1
        if not counts_due:  # once per step of the event loop, however many instances ended
            counts_due = True
            loop.call_soon(write_counts)

    try:
        for vector in space:
            await window.acquire()
            if run.halted:
                window.release()
                break
            t = asyncio.ensure_future(one(vector))
            running.add(t)
            t.add_done_callback(done)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    except SharinError as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, str(e))
    c.data.update(numTotal=space.size, numFinished=counts["finished"], numFailed=counts["failed"])
    run.mirror.set(
        cdir,
        {
            "numTotal": space.size,
            "numFinished": counts["finished"],
            "numFailed": counts["failed"],
            # a study that ended drops it (WHEEL resumes one that was stopped)
            "initialized": True if run.stopping else DELETE,
        },
    )
    if run.stopping:
        run.record(c, key, State.STOPPED, persist=persist, ended=True)
        return State.STOPPED.value
    if c.data.get("deleteLoopInstance"):
        # the names again from the space (lazily): no list of 100,000 names is kept meanwhile
        await files.call(_delete_instances, run, c, pdir, space)
    msg = f"{counts['finished']} of {space.size} instances finished"
    if counts["failed"] or counts["finished"] < space.size:
        return run.finish(c, key, State.FAILED, persist, 0, None, msg)
    run.record(c, key, State.FINISHED, persist=persist, ended=True, message=msg)
    return State.FINISHED.value


def _delete_instances(
    run: RunContext, c: Component, pdir: Path, space: Iterable[ParamVector]
) -> None:
    """``deleteLoopInstance``: remove every instance directory of a study that finished."""
    for vector in space:
        run.mirror.remove_tree(pdir / instance_name(c.name, vector))


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


#: template files up to this size are read once and written from memory into each instance
_CACHED_FILE_MAX = 1 << 20
#: and at most this much of them in all
_CACHE_MAX = 16 << 20

#: stands for an instance's name in the serialized text of its ``cmp.wheel.json``
_NAME_MARK = "\x00sharin-instance-name\x00"

#: a file modified less than this long before it is read is read again for the next instance
#: (a change within the file system's timestamp granularity could keep size and time alike)
_RACY_NS = 100_000_000

_FileKey = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def _file_key(st: os.stat_result) -> _FileKey:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _settled(key: _FileKey) -> bool:
    """True when a file with this key was last modified long enough ago that any later change
    gives it another modification time."""
    return time.time_ns() - key[3] > _RACY_NS


class _InstanceMaker:
    """Makes the instance directories of one parameter study: the template's directories and
    files, the target files rendered for the instance's vector, its files-axis files and
    scatter rules, and its ``cmp.wheel.json``.

    What is the same for every instance is prepared once: the instance's ``cmp.wheel.json``,
    the contents of the template's small files and the text of the target files. Both are
    read again when a file changed since (its size, modification time or inode differ; a file
    modified in the last 0.1 s is not kept), so an instance gets what the template holds when
    the instance is made, as with a plain copy.
    A file an instance does not have yet is created and written from memory; anything else
    (an instance directory left by an earlier run, a large file, a special file) goes the
    general way, :func:`shutil.copy` and :func:`write_json_atomic`.

    No file is a hard link to the template's, although that would save writing it: a task may
    write into any file of its directory (its script, an input it appends to), and through a
    shared inode it would change the template and every other instance; nor does a read-only
    link help (a task may ``chmod`` it, which changes them all too). Only a copy gives each
    instance what WHEEL gives it, a directory of its own.
    """

    def __init__(
        self,
        c: Component,
        cdir: Path,
        setting: ParameterSetting,
        template: tuple[list[str], list[str]],
        node_dirs: Mapping[str, str],
        fields: Mapping[str, object] | None = None,
    ) -> None:
        self.c = c
        self.cdir = cdir
        self.setting = setting
        self.dirs, self.files = template
        self.node_dirs = node_dirs
        data = dict(c.data)
        data["subComponent"] = True
        # an instance is made to run at once: its JSON says so from the start, so that the
        # state mirror has nothing to write when the instance is recorded running (one write
        # and one freed inode fewer per instance; the components inside start as not-started)
        data["state"] = State.RUNNING.value
        data.update(fields or {})
        self.mark_data = data
        # the same text for every instance but its name (WHEEL names each instance's JSON):
        # serialized once, as write_json_atomic does, the name put in between
        data = {**data, "name": _NAME_MARK}
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        head, sep, tail = text.partition(json.dumps(_NAME_MARK))
        self._mark_text = (head, tail) if sep and json.dumps(_NAME_MARK) not in tail else None
        self.targets = [target.path(node_dirs) for target in setting.target_files]
        self.bounds = Bounds.of(find_root(cdir))
        # directories every instance has once its template directories are made
        self._made_dirs = frozenset(["", *self.dirs])
        self._contents: dict[str, tuple[_FileKey, bytes]] = {}
        self._texts: dict[str, tuple[_FileKey, str]] = {}
        self._cached = 0
        #: the process's umask, read once (None: unknown, every new file gets ``fchmod``)
        self._umask: int | None = current_umask()
        #: how ``open(path, "w")`` encodes a rendered target file
        self._encoding = locale.getpreferredencoding(False)

    def make(self, idir: Path, vector: ParamVector, remake: bool, force: bool) -> None:
        """Make ``idir`` unless an earlier attempt made it (``remake`` False and it exists);
        with ``force``, an existing directory is removed first."""
        if not remake and idir.exists():
            return
        if force and idir.exists():
            shutil.rmtree(idir)
        fresh = _mkdir(str(idir))
        self._fill(idir, vector, fresh)

    def _fill(self, idir: Path, vector: ParamVector, fresh: bool) -> None:
        base = str(idir)
        for d in self.dirs:
            if not _mkdir(f"{base}/{d}"):
                fresh = False  # made by an earlier attempt: take the general way below
        cdir = str(self.cdir)
        for f in self.files:
            try:
                self._copy(f"{cdir}/{f}", f"{base}/{f}", fresh)
            except FileNotFoundError:
                continue  # a transient file that vanished since the listing
        for rel in self.targets:
            src = f"{cdir}/{rel}"
            try:
                text = self._text(src)
            except OSError as e:
                raise RunError(f"{self.c.rel}: target file {rel!r} cannot be read ({e})") from None
            except UnicodeDecodeError as e:
                raise RunError(
                    f"{self.c.rel}: target file {rel!r} is not UTF-8 text (byte "
                    f"0x{e.object[e.start]:02x} at offset {e.start}); save it as UTF-8"
                ) from None
            rendered = render_template(text, vector, source=Path(src))
            parent = rel.rpartition("/")[0]
            if fresh and parent in self._made_dirs and self._create(f"{base}/{rel}", rendered):
                continue
            if not (fresh and parent in self._made_dirs):
                Path(base, parent).mkdir(parents=True, exist_ok=True)
            with open(f"{base}/{rel}", "w") as out:  # as Path.write_text
                out.write(rendered)
        for f in vector.files:
            copy_path(self.cdir / f, idir / f, merge=True, bounds=self.bounds)
        for rule in resolve_scatter(self.setting, vector):
            dst_dir = idir / _node_dir(self.c, self.node_dirs, rule.node, "scatter", "dstNode")
            for src_path, dst_path in copy_pairs(rule, self.cdir, dst_dir, bounds=self.bounds):
                copy_path(src_path, dst_path, merge=True, bounds=self.bounds)
        if fresh and not vector.files and not self.setting.scatter and self._mark_text:
            try:
                self._mark(base, idir.name, self._mark_text)  # it has no cmp.wheel.json yet
                return
            except FileExistsError:  # a target file of that name
                pass
        write_json_atomic(idir / COMPONENT_FILE, {**self.mark_data, "name": idir.name})

    def _copy(self, src: str, dst: str, fresh: bool) -> None:
        """``shutil.copy(src, dst)``: content and permission bits."""
        st = os.stat(src)
        if not fresh or not stat.S_ISREG(st.st_mode) or st.st_size > _CACHED_FILE_MAX:
            shutil.copy(src, dst)
            return
        key = _file_key(st)
        cached = self._contents.get(src)
        if cached is not None and cached[0] == key:
            content = cached[1]
        else:
            with open(src, "rb") as f:
                key = _file_key(os.fstat(f.fileno()))
                content = f.read()
            if cached is not None:
                self._cached -= len(cached[1])
                del self._contents[src]
            if _settled(key) and self._cached + len(content) <= _CACHE_MAX:
                self._contents[src] = (key, content)
                self._cached += len(content)
        mode = stat.S_IMODE(st.st_mode)
        # created with its mode when the umask takes nothing from it (no fchmod needed), else
        # private until fchmod gives it its mode
        exact = self._umask is not None and not mode & (self._umask | ~0o777)
        try:
            fd = os.open(
                dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode if exact else 0o600
            )
        except FileExistsError:
            shutil.copy(src, dst)  # not ours to assume anything about
            return
        try:
            _write_all(fd, content)
            if not exact:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def _create(self, path: str, text: str) -> bool:
        """A rendered target file in a directory just made, as ``open(path, "w")`` writes it:
        created (it cannot be there yet) and written in one ``write``. False, having done
        nothing, when something is at ``path`` already (the general way writes over it)."""
        data = (text if os.linesep == "\n" else text.replace("\n", os.linesep)).encode(
            self._encoding
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            return False
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        return True

    def _text(self, src: str) -> str:
        """The text of a target file (as ``Path.read_text``), read again when it changed."""
        cached = self._texts.get(src)
        if cached is not None and cached[0] == _file_key(os.stat(src)):
            return cached[1]
        with open(src, encoding="utf-8") as f:
            key = _file_key(os.fstat(f.fileno()))
            text = f.read()
        if _settled(key) and len(text) <= _CACHED_FILE_MAX:
            self._texts[src] = (key, text)
        return text

    def _mark(self, base: str, name: str, text: tuple[str, str]) -> None:
        """The instance's own JSON (see :func:`_mark_instance`) in a directory just made: the
        file is created (it cannot be there yet) and written in one ``write``, with the mode
        :func:`write_json_atomic` gives. A run that dies before the write leaves it empty in an
        instance the journal does not know as started, which is made again."""
        fd = os.open(
            f"{base}/{COMPONENT_FILE}",
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
            NEW_FILE_MODE,
        )
        try:
            if self._umask is None or NEW_FILE_MODE & self._umask:
                os.fchmod(fd, NEW_FILE_MODE)  # whatever the umask
            _write_all(fd, json.dumps(name, ensure_ascii=False).join(text).encode())
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _mkdir(path: str) -> bool:
    """``Path(path).mkdir(exist_ok=True)``; True when this call made the directory."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return False
    return True


def gather(
    root: Path,
    setting: ParameterSetting,
    vector: ParamVector,
    idir: Path,
    cdir: Path,
    node_dirs: Mapping[str, str],
    bounds: Bounds | None = None,
) -> None:
    """Copy an instance's gathered files into the study's directory ``cdir``; nothing may
    lead out of ``bounds`` (by default the project ``root``; a study passes it once for all
    its instances)."""
    bounds = bounds or Bounds.of(root)
    for rule in resolve_gather(setting, vector):
        src_dir = idir / _node_dir(None, node_dirs, rule.node, "gather", "srcNode")
        _gather_rule(rule, src_dir, cdir, bounds)


class _Gatherer:
    """:func:`gather` for the instances of one study, what is the same for all of them done
    once: the rules' node directories, and their names when they have no placeholder.

    The usual rule (one file named without glob characters, copied to a new file of the
    study's directory) is followed on plain strings, with the checks :func:`copy_pairs` makes;
    anything else (a glob, a directory, a name that needs a closer look, a file that is not
    there or leads out, something at the destination) is left to :func:`gather`'s general
    way, which copies it or says what is wrong as it always does.
    """

    def __init__(
        self,
        root: Path,
        setting: ParameterSetting,
        cdir: Path,
        node_dirs: Mapping[str, str],
        bounds: Bounds,
    ) -> None:
        self.root, self.setting, self.cdir = root, setting, cdir
        self.node_dirs, self.bounds = node_dirs, bounds
        self._cdir = str(cdir)
        #: per rule: its index, the node's directory (None: left to the general way), and its
        #: names when they are the same for every instance
        self.rules: list[tuple[int, str | None, str | None, str | None]] = []
        for i, rule in enumerate(setting.gather):
            try:
                node = _node_dir(None, node_dirs, rule.src_node, "gather", "srcNode")
            except RunError:
                node = None  # said by the general way, for each instance
            self.rules.append((i, node, _constant(rule.src_name), _constant(rule.dst_name)))

    def __call__(self, vector: ParamVector, idir: Path) -> None:
        setting, base = self.setting, str(idir)
        rendered_names = []  # every rule's names first, as resolve_gather renders them
        for i, node, src_name, dst_name in self.rules:
            rule = setting.gather[i]
            if src_name is None:
                src_name = _render_name(setting, rule.src_name, vector, f"gather[{i}].srcName")
            if dst_name is None:
                dst_name = _render_name(setting, rule.dst_name, vector, f"gather[{i}].dstName")
            rendered_names.append((rule, node, src_name, dst_name))
        for rule, node, src_name, dst_name in rendered_names:
            if node is None or not self._one_file(base, node, src_name, dst_name):
                rendered = FileRule(src_name, rule.src_node, dst_name)
                src_dir = idir / _node_dir(None, self.node_dirs, rule.src_node, "gather", "srcNode")
                _gather_rule(rendered, src_dir, self.cdir, self.bounds)

    def _one_file(self, base: str, node: str, src_name: str, dst_name: str) -> bool:
        """Copy the regular file ``src_name`` of the instance's ``node`` to ``dst_name`` of the
        study's directory, where nothing is yet; False, having done nothing, for anything else."""
        if not (_plain_name(src_name) and _plain_name(dst_name)):
            return False
        src = f"{base}/{node}/{src_name}" if node else f"{base}/{src_name}"
        bounds = self.bounds
        if not bounds.contains(bounds.real(src), named_ok=False):
            return False
        try:
            if not stat.S_ISREG(os.stat(src).st_mode):
                return False
        except OSError:
            return False
        dst = f"{self._cdir}/{dst_name}"
        parent, _, name = dst.rpartition("/")
        if not bounds.contains(os.path.join(bounds.real(parent), name), named_ok=False):
            return False
        return _copy_to_new_file(src, dst)


def _constant(name: str) -> str | None:
    """A gather rule's name as every instance renders it, or None when it has a placeholder."""
    return name if "{" not in name else None


def _plain_name(name: str) -> bool:
    """A relative name of one file that the string paths above join as pathlib would: no glob,
    no empty, ``.`` or ``..`` part, no ``\\``, nothing :func:`name_problem` finds."""
    return (
        bool(name)
        and "\\" not in name
        and not has_magic(name)
        and all(part not in ("", ".", "..") for part in name.split("/"))
        and name_problem(name) is None
    )


def _gather_rule(rule: FileRule, src_dir: Path, cdir: Path, bounds: Bounds) -> None:
    for src_path, dst_path in copy_pairs(rule, src_dir, cdir, bounds=bounds):
        if not _copy_to_new_file(src_path, dst_path):
            copy_path(src_path, dst_path, merge=True, bounds=bounds)


def _copy_to_new_file(src: Path | str, dst: Path | str) -> bool:
    """Copy the regular file ``src`` to ``dst`` when nothing is at ``dst`` yet (what each
    instance gathers, usually): written in place, as :func:`shutil.copyfile` writes it, since
    there is nothing there to keep whole; a copy that fails leaves nothing. False, having done
    nothing, for anything else (a directory, a special file, something at ``dst``, a missing
    directory on the way), which :func:`copy_path` copies."""
    try:
        fd_in = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # copy_path says what is wrong
    try:
        st = os.fstat(fd_in)
        if not stat.S_ISREG(st.st_mode):
            return False
        try:
            fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except (FileExistsError, FileNotFoundError, NotADirectoryError):
            return False
        try:
            try:
                # to the end of the file, and past the size it had when opened if it grew; a
                # file that did not grow needs no last call that finds its end
                copied = 0
                while sent := os.sendfile(fd_out, fd_in, None, _SENDFILE_CHUNK):
                    copied += sent
                    if copied == st.st_size and sent < _SENDFILE_CHUNK:
                        break
            except OSError as e:  # a file system without sendfile: read and write
                if e.errno not in _NO_SENDFILE or os.lseek(fd_out, 0, os.SEEK_CUR):
                    raise
                while chunk := os.read(fd_in, _SENDFILE_CHUNK):
                    _write_all(fd_out, chunk)
        except BaseException:
            os.close(fd_out)
            os.unlink(dst)
            raise
        os.close(fd_out)
    finally:
        os.close(fd_in)
    return True


#: bytes one ``sendfile`` call copies at most
_SENDFILE_CHUNK = 1 << 23
#: what ``sendfile`` fails with where a file system does not offer it (before it copied anything)
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP})


def _node_dir(
    c: Component | None, node_dirs: Mapping[str, str], node: str | None, kind: str, key: str
) -> str:
    """The directory (relative to an instance) of a scatter's or gather's node."""
    if not node:
        return ""
    if node not in node_dirs:
        where = f"{c.rel}: " if c is not None else ""
        raise RunError(
            f"{where}{kind} {key} {node!r} is not the ID of a component inside the parameter "
            f"study; fix {key} in the parameter file or leave it empty"
        )
    return node_dirs[node]


# ------------------------------------------------------------------ source / viewer / storage
async def run_source(
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    try:
        await run.files.call(_hand_on, c, cdir, run.project_root)
    except (SharinError, OSError) as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, describe_error(e))
    run.record(c, key, State.FINISHED, persist=persist, started=True, ended=True)
    return State.FINISHED.value


def _hand_on(c: Component, cdir: Path, root: Path) -> None:
    """A source's output: its file named as the output, or a link by that name to the one
    file in its directory (on the file worker)."""
    outs = c.output_files
    name = outs[0].name if outs else ""
    if not name:
        raise RunError(f"{c.rel}: a source needs one output file name (outputFiles[0].name)")
    try:
        target = resolve_inside(cdir, name, Bounds.of(root), what="output name", follow=False)
    except UnsafePathError as e:
        raise RunError(f"{c.rel}: {e}") from None
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


async def run_viewer(
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    try:
        await run.deliver_inputs(c, cdir)
        images = await run.files.call(viewer_files, cdir)
    except (SharinError, OSError) as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, describe_error(e))
    run.record(
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
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    try:
        store = storage_path(c)
        await run.deliver_inputs(c, cdir)
        await run.files.call(_store, c, cdir, store, run.run_bounds())
    except (SharinError, OSError) as e:
        return run.finish(c, key, State.FAILED, persist, 0, None, describe_error(e))
    run.record(c, key, State.FINISHED, persist=persist, started=True, ended=True)
    return State.FINISHED.value


def _store(c: Component, cdir: Path, store: Path, bounds: Bounds) -> None:
    """Copy a storage component's inputs into its storage path (on the file worker)."""
    store.mkdir(parents=True, exist_ok=True)
    for inp in c.input_files:
        src = cdir / inp.name.rstrip("/") if inp.name else cdir
        if not src.exists():
            continue
        try:
            if inp.name.endswith("/") or not inp.name:
                pairs = [
                    (Path(check_real(child, bounds, shown=child.name)), store / child.name)
                    for child in src.iterdir()
                    if child.name not in (COMPONENT_FILE, STATUS_FILE)
                ]
            else:
                real = check_real(
                    resolve_inside(cdir, inp.name, bounds, what="input name"),
                    bounds,
                    shown=inp.name,
                )
                pairs = [(Path(real), store / inp.name)]
        except UnsafePathError as e:
            raise RunError(f"{c.rel}: {e}; nothing was stored") from None
        for real_src, dst in pairs:
            copy_path(real_src, dst, merge=True, bounds=bounds)
        if src.is_symlink():
            src.unlink()


def viewer_files(directory: Path, bounds: Bounds | None = None) -> list[Path]:
    """Image files below a viewer's directory, symbolic links followed, sorted.

    A link that leads out of the project (``bounds``, by default the project holding
    ``directory``) is neither listed nor followed."""
    bounds = bounds or Bounds.of(find_root(directory))
    out = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in dirs if bounds.contains(real_path(os.path.join(root, d)))]
        for f in files:
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                path = Path(root) / f
                if bounds.contains(real_path(path)):
                    out.append(path)
    return sorted(out)
