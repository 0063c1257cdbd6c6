"""The ``sharin`` command line.

Exit codes: 0 success; 1 the run failed (a task failed); 2 bad input (usage, an invalid or
unreadable project); 3 the run was stopped; 4 the project is busy (an engine runs it, so it
cannot be run, edited, saved or cleaned now; or another sharin command is changing it).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..errors import (
    BusyError,
    JournalError,
    ProjectError,
    RunError,
    SharinError,
    ValidationError,
)

# Each verb imports what it uses (the API, the engine, rich), so that `sharin --help` loads
# none of them and `status --json` no rich.
if TYPE_CHECKING:
    from rich.console import Console

    from ..engine import Event, RunResult
    from ..model import Component, Project
    from . import api

EXIT_FAILED, EXIT_INPUT, EXIT_STOPPED, EXIT_BUSY = 1, 2, 3, 4


class _LazyConsole:
    """A rich console for stdout or stderr, made when something is first printed with it."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # no emoji codes: a name or value like ":smile:" is shown as it is written
            self._console = Console(stderr=self._stderr, highlight=False, emoji=False)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.get().print(*objects, **options)

    @property
    def is_terminal(self) -> bool:
        return self.get().is_terminal


console = _LazyConsole()
err_console = _LazyConsole(stderr=True)


def _echo_line(text: str, *, green: str = "") -> None:
    """Print ``green`` (green on a terminal, as rich's ``[green]`` markup) followed by ``text``
    as one line, without loading rich (about 35 ms): for the lines of a verb that has nothing
    else to show. Colour follows rich's rules: off when NO_COLOR is set, on when FORCE_COLOR is,
    else only on a terminal."""
    color: bool | None = None
    if os.environ.get("NO_COLOR"):
        color = False
    elif os.environ.get("FORCE_COLOR"):
        color = True
    head = click.style(green, fg="green") if green and color is not False else green
    click.echo(head + text, color=color)


def _plain_width() -> int | None:
    """The width rich gives stdout when it would write it as plain text (no terminal by its
    rules, nothing in the environment that changes them, UTF-8), else None: then only rich
    writes what rich would."""
    env = os.environ
    if any(k in env for k in ("FORCE_COLOR", "TTY_COMPATIBLE", "JUPYTER_COLUMNS")):
        return None
    columns = env.get("COLUMNS")  # main() sets it when stdout is not a terminal
    if columns is not None and not (columns.isdigit() and int(columns) > 0):
        return None
    out = sys.stdout
    try:
        if out.isatty():
            return None
    except ValueError:
        return None
    if not (getattr(out, "encoding", None) or "utf-8").lower().startswith("utf"):
        return None
    if columns is not None:
        return int(columns)
    for fd in (0, 1, 2):  # as rich: the first standard stream that is a terminal
        try:
            return os.get_terminal_size(fd).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


def _plain_cell(text: str) -> bool:
    """Text that rich writes as it is: printable ASCII, no markup, no space to trim."""
    return (
        text.isascii()
        and text.isprintable()
        and "[" not in text
        and "\\" not in text
        and (text == text.strip())
    )


def _table_text(title: str, columns: list[str], rows: list[list[str]], width: int) -> str | None:
    """What rich writes, as plain text, for a ``Table(title=title, title_justify="left")`` of
    these columns and rows (heavy head box, one space of padding) that fits in ``width``; None
    when it would do more (wrap, shorten, mark up), which is then left to rich."""
    texts = [title, *columns, *(cell for row in rows for cell in row)]
    if not rows or not all(_plain_cell(t) for t in texts):
        return None
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(columns)]
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or len(title) > total:
        return None

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def line(cells: list[str], bar: str) -> str:
        return bar + bar.join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)) + bar

    lines = [title.ljust(total), rule("┏", "━", "┳", "┓"), line(columns, "┃")]
    lines.append(rule("┡", "━", "╇", "┩"))
    lines.extend(line(row, "│") for row in rows)
    lines.append(rule("└", "─", "┴", "┘"))
    return "\n".join(lines) + "\n"


def escape(text: str) -> str:
    """``text`` with rich's markup escaped (rich.markup.escape, imported when first needed:
    a text without ``[`` or a last ``\\`` has nothing to escape)."""
    if "[" not in text and not text.endswith("\\"):
        return text
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _database_errors() -> tuple[type[BaseException], ...]:
    """sqlite3's error class when a verb has loaded sqlite3 (else nothing to catch)."""
    sqlite3 = sys.modules.get("sqlite3")
    return (sqlite3.DatabaseError,) if sqlite3 is not None else ()


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
        except _database_errors() as e:  # a journal damaged after it was opened
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
    from . import api

    p = api.new_project(path, description)
    console.print(f"created project [bold]{p.name}[/] at {escape(str(p.root))}")


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
def copy(src: Path, dst: Path) -> None:
    """Copy project SRC (e.g. a shipped example) to DST, as a repository of its own."""
    from . import api

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
    from . import api

    mapping = {}
    for item in host_map:
        label, sep, host = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not LABEL=HOST", param_hint="--host-map")
        mapping[label] = host

    def ask(label: str, files: list[str]) -> str:
        if not sys.stdin.isatty():
            return ""  # not mapped: the error names the host and the --host-map to pass
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
@click.option(
    "--dereference",
    is_flag=True,
    help="Put a copy of what a symbolic link leaving the project points to in the archive "
    "(without it such a link is an error: import refuses it).",
)
def export(
    project: Path,
    output: Path | None,
    name: str | None,
    mail: str | None,
    memo: str | None,
    dereference: bool,
) -> None:
    """Write PROJECT's last save as an archive that WHEEL can import."""
    from . import api

    path = api.export_project(
        project, output, name=name, mail=mail, memo=memo, dereference=dereference
    )
    console.print(f"exported to {path}")


class _AddCommand(click.Command):
    """`add`, whose help lists the component types (the model is loaded only for that help)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ..model import ComponentType

        self.epilog = (
            "TYPE is one of: "
            + ", ".join(t.value for t in ComponentType)
            + ". Components with a script (task, stepjobTask, bulkjobTask) take the --script "
            "options."
        )
        super().format_epilog(ctx, formatter)


@cli.command(cls=_AddCommand)
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
    from . import api

    values = dict(_kv(x) for x in props)
    with api.editing(project) as p:
        c = _add(p, ctype, name, parent, script, script_text, script_file, values)
        for k in values:
            _warn_unknown(p, c, k)
    console.print(f"added {c.type} [bold]{c.rel}[/] ({c.id})")


def _add(
    p: Project,
    ctype: str,
    name: str,
    parent: str | None,
    script: str | None,
    script_text: str | None,
    script_file: Path | None,
    values: dict[str, Any],
) -> Component:
    from . import api

    if ctype in api.SCRIPT_TYPES:
        text = script_text
        if script_file is not None:
            try:
                text = script_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
                raise ProjectError(
                    f"cannot be used as a script ({reason}); give a text file",
                    path=script_file,
                ) from None
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
    return c


def _warn_unknown(p: Project, c: Component, key: str) -> None:
    from . import api

    warning = api.unknown_key(p, c, key)
    if warning:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE")
    k, v = text.split("=", 1)
    return k.strip(), _parse_value(v)


def _edge_command(file_help: str, else_help: str) -> Callable[[Callable[..., None]], Any]:
    """``connect`` and ``disconnect``: PROJECT SRC DST, ``--file OUT:IN`` and ``--else``."""

    def decorate(f: Callable[..., None]) -> Any:
        for option in (
            click.option("--else", "else_", is_flag=True, help=else_help),
            click.option("--file", "files", multiple=True, metavar="OUT:IN", help=file_help),
            click.argument("dst"),
            click.argument("src"),
            click.argument("project", type=click.Path(path_type=Path)),
        ):
            f = option(f)
        return cli.command()(f)

    return decorate


def _edit_edges(
    project: Path, src: str, dst: str, files: tuple[str, ...], else_: bool, *, remove: bool
) -> None:
    """Add (or remove) the flow edge SRC → DST, or with ``files`` those file edges, each
    ``OUT:IN`` checked before any edge is written."""
    from . import api

    specs = _file_specs(files)
    said = "removed " if remove else ""
    with api.editing(project) as p:
        if not files:
            (api.disconnect if remove else api.connect)(p, src, dst, else_=else_)
            console.print(escape(f"{said}{src} → {dst}" + (" (else)" if else_ else "")))
            return
        a, b = p.component(src), p.component(dst)
        edit = api.disconnect_files if remove else api.connect_files
        with p.all_or_nothing(a, b):  # every edge, or none when one is refused
            for out, inp in specs:
                edit(p, a, out, b, inp)
        for out, inp in specs:
            console.print(escape(f"{said}{src}:{out} → {dst}:{inp}"))


@_edge_command(
    "A file edge: SRC's output OUT becomes DST's input IN (repeatable). "
    "Without --file, a flow edge.",
    "Connect the else branch of an if component.",
)
def connect(project: Path, src: str, dst: str, files: tuple[str, ...], else_: bool) -> None:
    """Connect component SRC to DST: run after it, or pass it files with --file.

    SRC and DST are component paths (wf/task), unique names or IDs.
    """
    _edit_edges(project, src, dst, files, else_, remove=False)


def _file_specs(files: tuple[str, ...]) -> list[tuple[str, str]]:
    """``OUT:IN`` (or ``NAME`` for both), every one checked before any edge is written."""
    out = []
    for spec in files:
        src_name, sep, dst_name = spec.partition(":")
        pair = (src_name, dst_name if sep else src_name)
        if not all(pair):
            raise click.BadParameter(
                f"{spec!r} is not OUT:IN; give both file names (or one name for both)",
                param_hint="--file",
            )
        out.append(pair)
    return out


@_edge_command(
    "Remove the file edge from SRC's output OUT to DST's input IN (repeatable). "
    "Without --file, the flow edge.",
    "Remove the else edge of an if component.",
)
def disconnect(project: Path, src: str, dst: str, files: tuple[str, ...], else_: bool) -> None:
    """Remove the edge from component SRC to DST (the opposite of `connect`)."""
    _edit_edges(project, src, dst, files, else_, remove=True)


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component")
@click.option("-y", "--yes", is_flag=True, help="Remove it even if it holds files of yours.")
def remove(project: Path, component: str, yes: bool) -> None:
    """Remove COMPONENT, its directory (all below it) and its edges.

    `sharin revert` brings it back as the last save has it, until you save.
    """
    from . import api

    with api.editing(project) as p:
        preview = api.removal_preview(p, component)
        if preview.files and not yes:
            if not sys.stdin.isatty():
                raise ProjectError(
                    f"{preview.component} holds {_files_phrase(preview)}; "
                    "add --yes to remove it anyway"
                )
            for f in preview.files[:20]:
                err_console.print(escape(f"  {f}" + (" (unsaved)" if f in preview.unsaved else "")))
            if len(preview.files) > 20:
                err_console.print(f"  … and {len(preview.files) - 20} more")
            if not click.confirm(f"remove {preview.component} and {_files_phrase(preview)}?"):
                console.print("nothing removed")
                return
        removal = api.remove_component(p, component, force=True)
    msg = f"removed {removal.component}"
    if removal.unsaved:
        n = len(removal.unsaved)
        msg += f"; {n} file{'s' if n != 1 else ''} never saved {'are' if n != 1 else 'is'} gone"
    if removal.saved:
        msg += "; until you save, `sharin revert` brings it back as the last save has it"
    console.print(escape(msg))


def _files_phrase(r: api.Removal) -> str:
    n, u = len(r.files), len(r.unsaved)
    text = f"{n} file{'s' if n != 1 else ''} of yours"
    if u:
        text += f" ({u} not saved: `revert` cannot bring {'those' if u != 1 else 'it'} back)"
    return text


@cli.command("set")
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
def set_(project: Path, component: str, assignments: tuple[str, ...]) -> None:
    """Set properties of COMPONENT (values are JSON when they parse: 3, true, ["a"])."""
    from . import api

    pairs = [_kv(a) for a in assignments]
    fixed = [k for k, _ in pairs if k in ("ID", "parent", "type")]
    if fixed:  # refused before anything is written
        raise ProjectError(f"{fixed[0]!r} cannot be changed (it is set when a component is made)")
    with api.editing(project) as p:
        c = p.component(component)
        api.set_properties(p, c, dict(pairs))  # all of them or none
        for k, v in pairs:
            console.print(escape(f"{component}: {k} = {json.dumps(v)}"))
            _warn_unknown(p, c, k)


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="A JSON list of {file, field, message} objects."
)
@click.option("--wheel", is_flag=True, help="Count what WHEEL cannot run as problems too.")
def validate(project: Path, as_json: bool, wheel: bool) -> None:
    """Check PROJECT and list every problem (exit 2 if there are any), and as notes what
    WHEEL would not run the same way."""
    from ..model import load_hosts, wheel_notes
    from . import api

    if not as_json:
        p = api.open_project(project)  # read once, for the problems and the notes
        problems = api.validate(p)
        notes = wheel_notes(p, load_hosts())
        if wheel:
            problems = [*problems, *notes]
        else:
            for n in notes:
                _echo_line(f"note (WHEEL): {n}")
        if problems:
            raise ValidationError(problems)
        _echo_line(": no problems found", green="valid")
        return
    try:
        p = api.open_project(project)
        listed = api.validate(p)
        if wheel:
            listed = [*listed, *wheel_notes(p, load_hosts())]
        found = [{"file": x.file, "field": x.field, "message": x.message} for x in listed]
    except ValidationError as e:
        found = [{"file": x.file, "field": x.field, "message": x.message} for x in e.problems]
    except ProjectError as e:  # the project cannot even be read
        where = str(e.path) if e.path is not None else str(project)
        text = str(e).removeprefix(f"{e.path}: ") if e.path is not None else str(e)
        found = [{"file": where, "field": "", "message": text}]
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    if found:
        sys.exit(EXIT_INPUT)


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
        self.hung_up = False  #: the terminal is gone (SIGHUP): nothing can be asked

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
                console=console.get(),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("tasks", total=None, running="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total, running="")
            self._bar.__exit__(None, None, None)

    def asking(self, ask: Callable[[str, bool], str]) -> Callable[[str, bool], str]:
        """``ask`` with the live view paused while the prompt waits for its answer."""

        def paused(prompt: str, echo: bool) -> str:
            if self.hung_up:
                return ""  # the terminal hung up: no one to ask, the login fails saying so
            bar = self._bar
            if bar is not None:
                bar.stop()
            try:
                return ask(prompt, echo)
            except (click.Abort, EOFError, OSError):
                return ""  # no answer: the login is refused, naming the host
            finally:
                if bar is not None and bar is self._bar:
                    bar.start()

        return paused

    def __call__(self, ev: Event) -> None:
        from ..engine import HANGUP_MESSAGE
        from ..model import State

        if ev.kind == "run" and ev.message == HANGUP_MESSAGE:
            # the terminal is gone and output goes to .sharin/engine.log: only the summary
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            self.live = False
            self.quiet = True
            self.hung_up = True
            _plain_consoles()
            console.print(f"{time.strftime('%H:%M:%S')} {HANGUP_MESSAGE}")
            return
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
        elif not self.quiet and (
            ev.state in (State.RUNNING, State.FINISHED, State.FAILED, State.STOPPED)
            # a job in the scheduler's queue (not the intent to submit it)
            or (ev.state == State.QUEUED and ev.message not in ("", "submitting"))
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
    "--restart",
    is_flag=True,
    help="Start a new run that runs everything again, even what finished and did not change.",
)
@click.option(
    "-n",
    "--dry-run",
    is_flag=True,
    help="List what would run and why, without running anything or changing any file.",
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
    dry_run: bool,
    jobs: int | None,
    lost: str,
    quiet: bool,
) -> None:
    """Run PROJECT: resume its last run if that did not finish; otherwise run only what changed
    since it last finished (and what depends on that)."""
    from ..engine import RunOptions
    from ..model import State
    from . import api

    p = api.open_project(project)
    problems = api.validate(p)
    if problems:
        raise ValidationError(problems)
    if dry_run:
        _dry_run(p, restart)
        return
    if detach:
        _detach(p, keep_going, restart, jobs, lost)
        return
    opts = RunOptions(keep_going=keep_going, resume=not restart, max_local=jobs, lost_task=lost)  # type: ignore[arg-type]
    progress = _Progress(quiet)
    ask = progress.asking(_ask) if sys.stdin.isatty() else None
    with progress:
        result = api.run(p, options=opts, on_event=progress, handle_signals=True, ask=ask)
    _summary(p, result)
    if result.state == State.STOPPED:
        sys.exit(EXIT_STOPPED)
    if not result.ok:
        sys.exit(EXIT_FAILED)


#: reasons listed after a run or in a dry run; more are counted
_REASONS_SHOWN = 20


def _reason_lines(reasons: list[tuple[str, str]]) -> None:
    for key, why in reasons[:_REASONS_SHOWN]:
        console.print(f"  {escape(key)}: {escape(why)}")
    if len(reasons) > _REASONS_SHOWN:
        console.print(f"  … and {len(reasons) - _REASONS_SHOWN} more")


def _dry_run(p: Project, restart: bool) -> None:
    from . import api

    steps = api.plan(p, restart=restart)
    runs = [(s.key, s.reason) for s in steps if s.reason is not None]
    reused = len(steps) - len(runs)
    if not runs:
        console.print(
            "nothing changed since the last run; nothing to do" if steps else "no components"
        )
        return
    console.print(f"would run {len(runs)} of {len(steps)} (reused: {reused}):")
    _reason_lines(runs)


def _plain_consoles() -> None:
    """Consoles made anew for what stdout and stderr are now (a log file: no colours)."""
    global console, err_console
    console = _LazyConsole()
    err_console = _LazyConsole(stderr=True)


def _summary(p: Project, r: RunResult) -> None:
    from ..model import State

    if r.nothing_to_do:
        console.print(f"[green]run {r.run}:[/] nothing changed since run {r.since}; nothing to do")
        return
    counts = ", ".join(f"{n} {s}" for s, n in sorted(r.counts.items())) or "no tasks"
    color = "green" if r.ok else ("yellow" if r.state == State.STOPPED else "red")
    verb = "resumed run" if r.resumed else "run"
    reused = f" ({r.reused} unchanged since run {r.since})" if r.since is not None else ""
    console.print(f"[{color}]{verb} {r.run} {r.state}[/] in {r.elapsed:.1f} s: {counts}{reused}")
    if r.reasons and r.since is not None:
        console.print("ran again:")
        _reason_lines(sorted(r.reasons.items()))
    for f in r.failed:
        err_console.print(f"  [red]✗[/] {escape(f)}")
    if r.failed:
        root = escape(str(p.root))
        err_console.print(
            f"  logs: `sharin log {root} <component>`; rerun failed tasks with `sharin run {root}`"
        )


def _detach(p: Project, keep_going: bool, restart: bool, jobs: int | None, lost: str) -> None:
    import subprocess

    from ..engine import sharin_dir
    from . import api

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
    from . import api

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
                **_times(s.run.started, s.run.ended),
            },
            "tasks": [
                {
                    "key": t.key,
                    "kind": t.kind,
                    "state": t.state,
                    "attempt": t.attempt,
                    "rc": t.rc,
                    "message": t.message,
                    **_times(t.started, t.ended),
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
    head = f"{s.project}: {s.state}"
    if s.engine_pid:
        head += f" (engine pid {s.engine_pid})"
    if s.interrupted:
        head += " — interrupted; `sharin run` resumes it"
    # plain text, as rich would write it, when that is all rich would do: rich is not loaded
    width = _plain_width()
    if width is not None and _plain_cell(head) and len("project " + head) <= width:
        click.echo("project " + head)
    else:
        console.print(f"project [bold]{escape(s.project)}[/]" + head[len(s.project) :])
    if s.run is None:
        if width is not None:
            click.echo("no runs yet")
        else:
            console.print("no runs yet")
        return
    title = f"run {s.run.id} ({s.run.state})"
    cols = ["component", "type", "state", "attempt", "exit", "time", "message"]
    if jobs:
        cols.append("host says")
    rows: list[list[str]] = []
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
        rows.append(row)
    text = _table_text(title, cols, rows, width) if width is not None else None
    if text is not None:
        click.echo(text, nl=False)
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _iso(t: float | None) -> str | None:
    from datetime import datetime

    if t is None:
        return None
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


def _times(started: float | None, ended: float | None) -> dict[str, Any]:
    """Start and end as epoch seconds and as ISO 8601 local time with its UTC offset."""
    return {
        "started": started,
        "ended": ended,
        "started_at": _iso(started),
        "ended_at": _iso(ended),
    }


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component")
@click.option("--err", "stream", flag_value="err", help="Show stderr instead of stdout.")
@click.option("--out", "stream", flag_value="out", default=True, help="Show stdout (default).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the task writes.")
@click.option("--run", "run_id", type=int, default=None, help="Run number (default: the last).")
def log(project: Path, component: str, stream: str, follow: bool, run_id: int | None) -> None:
    """Print the stdout (or stderr) a task wrote in a run.

    COMPONENT is a component (path, unique name or ID) or one of its loop trips or
    parameter-study instances (e.g. loop_1/task); for a task inside a loop, the trips are listed.
    """
    from . import api

    out, err = api.log_paths(project, component, run_id, pending=follow)
    path = err if stream == "err" else out
    if not path.exists() and not follow:
        raise ProjectError(
            f"{component} wrote no {stream} log in that run (only tasks have logs; "
            f"{path} does not exist)"
        )
    _cat(path, follow, project)


def _cat(path: Path, follow: bool, project: Path) -> None:
    from . import api

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
    from . import api

    if api.stop(project):
        console.print("stopped; `sharin run` resumes the run later")
    else:
        console.print("the project is not running")


@cli.command()
@click.argument("project", required=False, type=click.Path(path_type=Path))
@click.option(
    "--workspace",
    type=click.Path(path_type=Path, file_okay=False),
    help="directory the project list shows and new projects go to (default: the current one)",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=0, type=int, help="port to listen on (default: a free one)")
@click.option("--no-browser", is_flag=True, help="print the URL only; do not open a browser")
def ui(
    project: Path | None, workspace: Path | None, host: str, port: int, no_browser: bool
) -> None:
    """Start the browser UI (on 127.0.0.1, with a token in the URL it prints)."""
    from ..model import find_project_root
    from .server import ServerConfig, serve

    opened = [find_project_root(project)] if project is not None else []
    ws = workspace or (opened[0].parent if opened else Path.cwd())
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/] listening on {escape(host)}: anyone who can reach this machine "
            "and learns the URL's token can run commands as you"
        )
    serve(
        ServerConfig(workspace=ws, projects=opened),
        host=host,
        port=port,
        open_browser=not no_browser,
    )


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm_discard(what: str) -> Callable[[list[str]], bool]:
    """A question for the terminal before unsaved changes go (no terminal: the answer is no)."""

    def confirm(paths: list[str]) -> bool:
        if not _interactive():
            return False
        shown = "\n".join(f"  {x}" for x in paths[:20])
        more = f"\n  … and {len(paths) - 20} more" if len(paths) > 20 else ""
        console.print(
            escape(f"unsaved changes since the last save:\n{shown}{more}"), soft_wrap=True
        )
        return bool(click.confirm(f"{what} throws them away. Go on?", default=False))

    return confirm


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("component", required=False)
@click.option(
    "--discard-unsaved",
    "discard",
    is_flag=True,
    help="Also throw away unsaved changes (as revert does) without asking.",
)
@click.option(
    "--keep-unsaved",
    "keep",
    is_flag=True,
    help="Keep unsaved changes; remove only what runs made.",
)
def clean(project: Path, component: str | None, discard: bool, keep: bool) -> None:
    """Remove what runs made and set states back to not-started (in COMPONENT only, if given).

    Outputs, delivered inputs, loop trips, parameter-study instances and status files go; every
    file you wrote stays. Like WHEEL's clean it goes back to the last save: unsaved changes
    are thrown away only after you agree (asked on a terminal; elsewhere pass
    --discard-unsaved, or --keep-unsaved to keep them). The run history is kept.
    """
    from . import api

    if discard and keep:
        raise click.UsageError("--discard-unsaved and --keep-unsaved exclude each other")
    mode = "discard" if discard else "keep" if keep else "refuse"
    r = api.clean(project, component, unsaved=mode, confirm=_confirm_discard("clean"))
    console.print(escape("cleaned" + (f" {component}" if component else "")))
    if r.discarded:
        console.print(escape(f"threw away unsaved changes to {len(r.discarded)} files"))
    for label, paths in (
        ("kept (a run made them, but they were changed since)", r.changed_since),
        ("kept (no recorded run made them)", r.unknown),
    ):
        if paths:
            shown = ", ".join(paths[:5]) + (f" … ({len(paths)} in all)" if len(paths) > 5 else "")
            err_console.print(escape(f"{label}: {shown}"), soft_wrap=True)
    for f in r.unreadable:
        err_console.print(escape(f"{f}: cannot be read, its state was left as it is"))


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-m", "--message", default="save project", help="Commit message.")
def save(project: Path, message: str) -> None:
    """Save PROJECT (a git commit of its files)."""
    from . import api

    console.print("saved" if api.save(project, message) else "nothing to save")


@cli.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-y", "--yes", is_flag=True, help="Do not ask on a terminal.")
def revert(project: Path, yes: bool) -> None:
    """Throw away all unsaved changes: every file back to the last save, files added since removed.

    This is the verb that discards work (on a terminal it asks first, unless --yes). Files
    that were never saved nor added (run outputs among them) stay; `sharin clean` removes
    what runs made.
    """
    from . import api

    if not yes and _interactive():
        pending = api.unsaved_changes(project)
        if pending and not _confirm_discard("revert")(pending):
            console.print("nothing was changed")
            return
    api.revert(project)
    console.print("reverted to the last save")


def _git_label(info: dict[str, Any]) -> str:
    """The commit a run started from, with ``+unsaved`` when the work tree had changes."""
    commit = info.get("git")
    label = str(commit)[:10] if isinstance(commit, str) and commit else ""
    if info.get("dirty") is True:
        label = f"{label or '?'}+unsaved"
    return label


@cli.command("runs")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs_cmd(project: Path, as_json: bool) -> None:
    """List the runs of PROJECT."""
    from . import api

    rs = api.runs(project)
    if as_json:
        out = [
            {
                "id": r.id,
                "state": r.state,
                **_times(r.started, r.ended),
                "git": r.info.get("git") if isinstance(r.info.get("git"), str) else None,
                "unsaved": r.info.get("dirty") is True,
            }
            for r in rs
        ]
        click.echo(json.dumps(out, indent=2))
        return
    if not rs:
        console.print("no runs yet")
        return
    from rich.table import Table

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
            _git_label(r.info),
        )
    console.print(table)


# ---------------------------------------------------------------------- remote hosts
@cli.group("host")
def host_group() -> None:
    """Remote hosts (remotehost.json, the file WHEEL uses): add, list, show, test, remove."""


def _host_json(cfg: Any, file: Path) -> dict[str, Any]:
    return {**cfg.raw, "name": cfg.name, "file": str(file)}


@host_group.command("add")
@click.argument("name")
@click.option(
    "--host", "hostname", required=True, help="Host name, address or ~/.ssh/config alias."
)
@click.option("--user", default=None, help="User name on the host (default: ~/.ssh/config's).")
@click.option("--port", type=int, default=None, help="SSH port (default 22).")
@click.option("--path", "work_path", default=None, help="Working directory on the host.")
@click.option("--key-file", default=None, help="Private key (default: ssh-agent, ~/.ssh).")
@click.option("--job-scheduler", default=None, help="A scheduler of jobScheduler.json.")
@click.option("--queue", "queues", multiple=True, help="A queue tasks may use (repeat).")
@click.option(
    "--set",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other remotehost.json field (numJob=3, renewInterval=10 ...); VALUE is JSON or text.",
)
def host_add(
    name: str,
    hostname: str,
    user: str | None,
    port: int | None,
    work_path: str | None,
    key_file: str | None,
    job_scheduler: str | None,
    queues: tuple[str, ...],
    extra: tuple[str, ...],
) -> None:
    """Add the host NAME (the label tasks give as their host)."""
    from . import api

    entry: dict[str, Any] = {"name": name, "host": hostname}
    given = {
        "user": user,
        "port": port,
        "path": work_path,
        "keyFile": key_file,
        "jobScheduler": job_scheduler,
        "queue": list(queues) or None,
    }
    entry.update({k: v for k, v in given.items() if v is not None})
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        entry[key] = _parse_value(value)
    from ..model._hosts import hosts_file

    cfg = api.add_host(entry)
    console.print(escape(f"added host {cfg.name} ({hostname}) to {hosts_file()}"))


@host_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the hosts as JSON.")
def host_list(as_json: bool) -> None:
    """List the hosts and the file each one is in."""
    from . import api

    entries = api.host_entries()
    if as_json:
        click.echo(json.dumps([_host_json(e.config, e.file) for e in entries], indent=2))
        return
    if not entries:
        console.print("no remote hosts; add one with `sharin host add NAME --host HOST`")
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "host", "user", "port", "scheduler", "file"):
        table.add_column(col)
    for e in entries:
        c = e.config
        table.add_row(
            escape(c.name),
            escape(c.host),
            escape(c.user or ""),
            str(c.port),
            escape(c.job_scheduler or ""),
            escape(str(e.file)),
        )
    console.print(table)


@host_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
def host_show(name: str, as_json: bool) -> None:
    """Show the host NAME's remotehost.json entry."""
    from . import api

    found = api.host_entry(name)
    data = _host_json(found.config, found.file)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        console.print(escape(f"{key}: {value if isinstance(value, str) else json.dumps(value)}"))


def _ask(prompt: str, echo: bool) -> str:
    """A passphrase, password or one-time code, typed at the terminal (never stored)."""
    answer: str = click.prompt(prompt.rstrip().rstrip(":"), hide_input=not echo, err=True)
    return answer


@host_group.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def host_test(name: str, as_json: bool) -> None:
    """Connect to the host NAME, run `true`, and look for sbatch, qsub, bsub and pjsub."""
    from . import api

    ask = _ask if sys.stdin.isatty() else None
    result = api.check_host(name, ask=ask)
    if as_json:
        out = {
            "name": result.host,
            "where": result.where,
            "ok": True,
            "connect_seconds": round(result.connect_time, 4),
            "round_trip_seconds": round(result.round_trip, 4),
            "schedulers": result.commands,
        }
        click.echo(json.dumps(out, indent=2))
        return
    found = ", ".join(f"{k} ({v})" for k, v in result.commands.items()) or "none"
    console.print(
        escape(
            f"{result.host}: connected to {result.where} in {result.connect_time:.2f} s; "
            f"round trip {result.round_trip * 1000:.1f} ms; scheduler commands: {found}"
        )
    )


@host_group.command("remove")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def host_remove(name: str, yes: bool) -> None:
    """Remove the host NAME from its remotehost.json."""
    from . import api

    found = api.host_entry(name)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"removing host {name!r} needs --yes without a terminal")
        if not click.confirm(f"remove host {name} from {found.file}?"):
            return
    file = api.remove_host(name)
    console.print(escape(f"removed host {name} from {file}"))


def main() -> None:
    os.environ.setdefault(
        "COLUMNS", os.environ.get("COLUMNS", "120")
    ) if not sys.stdout.isatty() else None
    cli(prog_name="sharin")


if __name__ == "__main__":  # python -m sharin.interfaces.cli
    main()
