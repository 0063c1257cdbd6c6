"""The ``sharin`` command line.

Exit codes: 0 success; 1 the run failed (a task failed); 2 bad input (usage, an invalid or
unreadable project); 3 the run was stopped; 4 the project is busy (another engine runs it).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..engine import Event, RunOptions, RunResult
from ..errors import (
    BusyError,
    JournalError,
    ProjectError,
    RunError,
    SharinError,
    ValidationError,
)
from ..model import Project, State
from . import api

EXIT_FAILED, EXIT_INPUT, EXIT_STOPPED, EXIT_BUSY = 1, 2, 3, 4

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def exit_code(e: SharinError) -> int:
    """The exit code of an error (the table in the README): 4 when another engine runs the
    project, 2 for bad input (an invalid or unreadable project, configuration or journal),
    1 when a run could not proceed."""
    if isinstance(e, BusyError):
        return EXIT_BUSY
    if isinstance(e, ProjectError | JournalError):
        return EXIT_INPUT
    return EXIT_FAILED


def _fail(e: SharinError) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, soft_wrap=True)
    sys.exit(exit_code(e))


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SharinError as e:
            _fail(e)
        except sqlite3.DatabaseError as e:  # a journal damaged after it was opened
            _fail(
                JournalError(
                    f"the run journal .sharin/journal.sqlite cannot be read ({e}); move it "
                    "away (e.g. to .sharin/journal.sqlite.bad) to start a fresh history"
                )
            )
        except OSError as e:  # a file sharin had to read or write: name it, no traceback
            where = f"{e.filename}: " if e.filename else ""
            _fail(ProjectError(f"{where}{e.strerror or e}; check the file and its permissions"))


def _parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true, null, lists), a plain string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sharin")
def cli() -> None:
    """sharin: run WHEEL-format workflows on this machine, remote hosts and batch schedulers."""


# ---------------------------------------------------------------------- building
@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-d", "--description", default="", help="Free text shown in project lists.")
def new(path: Path, description: str) -> None:
    """Create an empty project PATH (a <name>.wheel directory and git repository)."""
    p = api.new_project(path, description)
    console.print(f"created project [bold]{p.name}[/] at {escape(str(p.root))}")


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
def copy(src: Path, dst: Path) -> None:
    """Copy project SRC (e.g. a shipped example) to DST, as a repository of its own."""
    p = api.copy_project(src, dst)
    console.print(escape(f"copied {src} to {p.root}"))


@cli.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("parent", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option(
    "--host-map",
    "host_map",
    multiple=True,
    metavar="LABEL=HOST",
    help="Use HOST (localhost or a remotehost.json label) for the archive's LABEL.",
)
@click.option(
    "--resume",
    "keep_state",
    is_flag=True,
    help="Keep component states left by a run, so `sharin run` resumes it.",
)
def import_(source: Path, parent: Path, host_map: tuple[str, ...], keep_state: bool) -> None:
    """Import a WHEEL or sharin archive (.tgz) or project directory SOURCE into PARENT."""
    mapping = {}
    for item in host_map:
        label, sep, host = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not LABEL=HOST", param_hint="--host-map")
        mapping[label] = host

    def ask(label: str, files: list[str]) -> str:
        if not sys.stdin.isatty():
            return mapping.get(label, "")
        return str(
            click.prompt(
                f"host {label!r} (used by {', '.join(files)}) is unknown here; run it on",
                default="localhost",
            )
        )

    p = api.import_project(source, parent, host_map=mapping, ask_host=ask, keep_state=keep_state)
    console.print(f"imported project [bold]{p.name}[/] to {p.root}")


@cli.command("export")
@click.argument("project", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Archive file or directory (default: ./WHEEL_project_<name>.tgz).",
)
@click.option("--name", default=None, help="Exporter's name (recorded in the archive).")
@click.option("--mail", default=None, help="Exporter's e-mail address.")
@click.option("--memo", default=None, help="A note recorded in the archive.")
def export(
    project: Path, output: Path | None, name: str | None, mail: str | None, memo: str | None
) -> None:
    """Write PROJECT's last save as an archive that WHEEL can import."""
    path = api.export_project(project, output, name=name, mail=mail, memo=memo)
    console.print(f"exported to {path}")


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("ctype", metavar="TYPE")
@click.argument("name")
@click.option("--parent", default=None, help="Path of the enclosing workflow (default: the root).")
@click.option("--script", default=None, help="Script file name of a task (default run.sh).")
@click.option("--script-text", default=None, help="Write this text into the task's script.")
@click.option(
    "--script-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Copy this file into the task's directory as its script.",
)
@click.option(
    "--set", "props", multiple=True, metavar="KEY=VALUE", help="Set a property (repeatable)."
)
def add(
    project: Path,
    ctype: str,
    name: str,
    parent: str | None,
    script: str | None,
    script_text: str | None,
    script_file: Path | None,
    props: tuple[str, ...],
) -> None:
    """Add a component of TYPE (task, workflow, ...) named NAME to PROJECT."""
    p = api.open_project(project)
    values = dict(_kv(x) for x in props)
    if ctype in api.SCRIPT_TYPES:
        text = script_text
        if script_file is not None:
            text = script_file.read_text()
        c = api.add_task(
            p,
            name,
            text,
            script=script or (script_file.name if script_file else "run.sh"),
            parent=parent,
            ctype=ctype,
            **values,
        )
    else:
        if script or script_text or script_file:
            raise click.UsageError(
                "--script options are for components with a script: " + ", ".join(api.SCRIPT_TYPES)
            )
        c = api.add_component(p, ctype, name, parent=parent, **values)
    console.print(f"added {c.type} [bold]{c.rel}[/] ({c.id})")


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE")
    k, v = text.split("=", 1)
    return k.strip(), _parse_value(v)


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("src")
@click.argument("dst")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="OUT:IN",
    help="A file edge: SRC's output OUT becomes DST's input IN (repeatable). "
    "Without --file, a flow edge.",
)
@click.option("--else", "else_", is_flag=True, help="Connect the else branch of an if component.")
def connect(project: Path, src: str, dst: str, files: tuple[str, ...], else_: bool) -> None:
    """Connect component SRC to DST: run after it, or pass it files with --file."""
    p = api.open_project(project)
    if not files:
        api.connect(p, src, dst, else_=else_)
        console.print(f"{src} → {dst}" + (" (else)" if else_ else ""))
        return
    for spec in files:
        out, sep, inp = spec.partition(":")
        if not sep:
            inp = out
        api.connect_files(p, src, out, dst, inp)
        console.print(escape(f"{src}:{out} → {dst}:{inp}"))


@cli.command("set")
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
def set_(project: Path, component: str, assignments: tuple[str, ...]) -> None:
    """Set properties of COMPONENT (values are JSON when they parse: 3, true, ["a"])."""
    p = api.open_project(project)
    pairs = [_kv(a) for a in assignments]
    for k, v in pairs:  # every value is checked before any is written
        p.check_property(p.component(component), k, v)
    for k, v in pairs:
        api.set_property(p, component, k, v)
        console.print(escape(f"{component}: {k} = {json.dumps(v)}"))


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
def validate(project: Path) -> None:
    """Check PROJECT and list every problem (exit 2 if there are any)."""
    problems = api.validate(project)
    if problems:
        raise ValidationError(problems)
    console.print("[green]valid[/]: no problems found")


# ---------------------------------------------------------------------- running
class _Progress:
    """Live view: a bar of finished tasks and the tasks running now (lines when not a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.states: dict[str, str] = {}
        self.running: dict[str, None] = {}  # insertion-ordered set of running tasks
        self.total = 0
        self.done = 0
        self._shown = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[running]}"),
                console=console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("tasks", total=None, running="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total, running="")
            self._bar.__exit__(None, None, None)

    def __call__(self, ev: Event) -> None:
        if ev.kind == "run":
            if not self.quiet and ev.state == State.RUNNING and ev.message == "resumed":
                console.print("resuming the unfinished run: finished tasks are not run again")
            return
        if self.live:
            if ev.kind == "task":
                # counted incrementally: a run of 10,000 tasks must not cost O(n) per event
                old = self.states.get(ev.key)
                if old is None:
                    self.total += 1
                if old is not None and State(old).final:
                    self.done -= 1
                if State(ev.state).final:
                    self.done += 1
                self.states[ev.key] = ev.state
                if ev.state == State.RUNNING:
                    self.running[ev.key] = None
                else:
                    self.running.pop(ev.key, None)
            now = time.monotonic()
            if now - self._shown >= 0.1 or ev.state == State.FAILED:
                self._shown = now
                keys = list(itertools.islice(self.running, 3))
                more = len(self.running) - len(keys)
                shown = ", ".join(keys) + (f" +{more}" if more > 0 else "")
                self._bar.update(self._task, completed=self.done, total=self.total, running=shown)
            if ev.state == State.FAILED:
                self._bar.console.print(f"[red]failed[/] {escape(f'{ev.key}: {ev.message}')}")
        elif not self.quiet and ev.state in (
            State.RUNNING,
            State.FINISHED,
            State.FAILED,
            State.STOPPED,
        ):
            extra = f" ({ev.message})" if ev.message and ev.state != State.RUNNING else ""
            console.print(escape(f"{time.strftime('%H:%M:%S')} {ev.state:<9} {ev.key}{extra}"))


@cli.command("run")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--detach", is_flag=True, help="Run in the background; watch with `sharin status`.")
@click.option(
    "-k", "--keep-going", is_flag=True, help="After a failure go on with independent components."
)
@click.option(
    "--restart", is_flag=True, help="Start a new run even if the last one did not finish."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Local tasks at once (WHEEL's numJobOnLocal; default: number of CPUs).",
)
@click.option(
    "--lost",
    type=click.Choice(["rerun", "fail"]),
    default="rerun",
    show_default=True,
    help="A task whose process vanished while no engine watched it: run again, or fail.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
def run_cmd(
    project: Path,
    detach: bool,
    keep_going: bool,
    restart: bool,
    jobs: int | None,
    lost: str,
    quiet: bool,
) -> None:
    """Run PROJECT (resuming its last run if that did not finish)."""
    p = api.open_project(project)
    problems = api.validate(p)
    if problems:
        raise ValidationError(problems)
    if detach:
        _detach(p, keep_going, restart, jobs, lost)
        return
    opts = RunOptions(keep_going=keep_going, resume=not restart, max_local=jobs, lost_task=lost)  # type: ignore[arg-type]
    progress = _Progress(quiet)
    with progress:
        result = api.run(p, options=opts, on_event=progress, handle_signals=True)
    _summary(p, result)
    if result.state == State.STOPPED:
        sys.exit(EXIT_STOPPED)
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _summary(p: Project, r: RunResult) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(r.counts.items())) or "no tasks"
    color = "green" if r.ok else ("yellow" if r.state == State.STOPPED else "red")
    verb = "resumed run" if r.resumed else "run"
    console.print(f"[{color}]{verb} {r.run} {r.state}[/] in {r.elapsed:.1f} s: {counts}")
    for f in r.failed:
        err_console.print(f"  [red]✗[/] {escape(f)}")
    if r.failed:
        root = escape(str(p.root))
        err_console.print(
            f"  logs: `sharin log {root} <component>`; rerun failed tasks with `sharin run {root}`"
        )


def _detach(p: Project, keep_going: bool, restart: bool, jobs: int | None, lost: str) -> None:
    from ..engine import sharin_dir

    running = api.engine_pid(p)
    if running is not None:
        raise BusyError(
            f"{p.root}: another engine (pid {running}) is running the project; "
            f"`sharin status {p.root}` to watch it, `sharin stop {p.root}` to stop it"
        )
    d = sharin_dir(p.root)
    d.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "sharin", "run", str(p.root), "--quiet", "--lost", lost]
    if keep_going:
        args.append("--keep-going")
    if restart:
        args.append("--restart")
    if jobs:
        args += ["--jobs", str(jobs)]
    with open(d / "engine.log", "ab") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=p.root,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if api.engine_pid(p) == proc.pid:
            break
        if proc.poll() is not None:
            said = _last_error(d / "engine.log")
            message = f"the engine exited at once: {said or f'code {proc.returncode}'}"
            message += f" (see {d / 'engine.log'})"
            if proc.returncode == EXIT_BUSY:
                raise BusyError(message)
            if proc.returncode == EXIT_INPUT:
                raise ProjectError(message)
            raise RunError(message)
        time.sleep(0.02)
    root = escape(str(p.root))
    console.print(
        f"running in the background (engine pid {proc.pid}); "
        f"`sharin status {root}` to watch, `sharin stop {root}` to stop"
    )


def _last_error(log: Path) -> str:
    """The last ``error:`` line an engine wrote to its log, without the prefix."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines[-50:]):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    return ""


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--run", "run_id", type=int, default=None, help="Show this run (default: the last).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--jobs",
    is_flag=True,
    help="Also ask each host about its running processes and jobs (one query per host).",
)
def status(project: Path, run_id: int | None, as_json: bool, jobs: bool) -> None:
    """State of PROJECT and of each task in its last run."""
    s = api.status(project, run_id)
    live = api.job_states(project, run_id) if jobs else {}
    if as_json:
        out = {
            "project": s.project,
            "state": s.state,
            "engine_pid": s.engine_pid,
            "interrupted": s.interrupted,
            "run": None
            if s.run is None
            else {
                "id": s.run.id,
                "state": s.run.state,
                "started": s.run.started,
                "ended": s.run.ended,
            },
            "tasks": [
                {
                    "key": t.key,
                    "kind": t.kind,
                    "state": t.state,
                    "attempt": t.attempt,
                    "rc": t.rc,
                    "message": t.message,
                    **(
                        {"job": {"state": live[t.key].state, "says": live[t.key].native}}
                        if t.key in live
                        else {}
                    ),
                }
                for t in s.tasks
            ],
        }
        click.echo(json.dumps(out, indent=2))
        return
    head = f"project [bold]{s.project}[/]: {s.state}"
    if s.engine_pid:
        head += f" (engine pid {s.engine_pid})"
    if s.interrupted:
        head += " — interrupted; `sharin run` resumes it"
    console.print(head)
    if s.run is None:
        console.print("no runs yet")
        return
    table = Table(title=f"run {s.run.id} ({s.run.state})", title_justify="left")
    cols = ["component", "type", "state", "attempt", "exit", "time", "message"]
    if jobs:
        cols.append("host says")
    for col in cols:
        table.add_column(col)
    for t in s.tasks:
        dur = ""
        if t.started:
            dur = f"{(t.ended or time.time()) - t.started:.1f}s"
        row = [
            t.key,
            t.kind,
            t.state,
            str(t.attempt or ""),
            "" if t.rc is None else str(t.rc),
            dur,
            escape(t.message or ""),
        ]
        if jobs:
            j = live.get(t.key)
            row.append("" if j is None else escape(f"{j.state}: {j.native}"))
        table.add_row(*row)
    console.print(table)


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component")
@click.option("--err", "stream", flag_value="err", help="Show stderr instead of stdout.")
@click.option("--out", "stream", flag_value="out", default=True, help="Show stdout (default).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the task writes.")
@click.option("--run", "run_id", type=int, default=None, help="Run number (default: the last).")
def log(project: Path, component: str, stream: str, follow: bool, run_id: int | None) -> None:
    """Print the stdout (or stderr) a task wrote in a run."""
    out, err = api.log_paths(project, component, run_id)
    path = err if stream == "err" else out
    if not path.exists() and not follow:
        raise ProjectError(f"no {stream} log for {component} in that run ({path} does not exist)")
    _cat(path, follow, project)


def _cat(path: Path, follow: bool, project: Path) -> None:
    pos = 0
    while True:
        # asked before reading, so that what the task wrote just before the engine ended is read
        running = follow and api.engine_pid(project) is not None
        if path.exists():
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
                pos += len(data)
            if data:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
        if not running:
            return
        time.sleep(0.2)


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
def stop(project: Path) -> None:
    """Stop the engine running PROJECT (running tasks are cancelled)."""
    if api.stop(project):
        console.print("stopped; `sharin run` resumes the run later")
    else:
        console.print("the project is not running")


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component", required=False)
def clean(project: Path, component: str | None) -> None:
    """Remove run outputs and states (back to the last save); run history is kept."""
    api.clean(project, component)
    console.print(escape("cleaned" + (f" {component}" if component else "")))


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-m", "--message", default="save project", help="Commit message.")
def save(project: Path, message: str) -> None:
    """Save PROJECT (a git commit of its files)."""
    console.print("saved" if api.save(project, message) else "nothing to save")


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
def revert(project: Path) -> None:
    """Throw away all changes since the last save."""
    api.revert(project)
    console.print("reverted to the last save")


@cli.command("runs")
@click.argument("project", type=click.Path(path_type=Path))
def runs_cmd(project: Path) -> None:
    """List the runs of PROJECT."""
    rs = api.runs(project)
    if not rs:
        console.print("no runs yet")
        return
    table = Table()
    for col in ("run", "state", "started", "duration", "git"):
        table.add_column(col)
    for r in rs:
        dur = f"{(r.ended or time.time()) - r.started:.1f}s"
        table.add_row(
            str(r.id),
            r.state,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started)),
            dur,
            str(r.info.get("git") or "")[:10],
        )
    console.print(table)


def main() -> None:
    os.environ.setdefault(
        "COLUMNS", os.environ.get("COLUMNS", "120")
    ) if not sys.stdout.isatty() else None
    cli(prog_name="sharin")
