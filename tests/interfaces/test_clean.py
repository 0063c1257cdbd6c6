"""clean removes exactly what runs made and never what the user wrote; unsaved changes go only
with consent; the next run starts afresh; revert and clean work on a broken project."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sharin
from sharin import Project
from sharin.engine import Journal
from sharin.interfaces import api

from ..conftest import Cli, Processes
from ..helpers import read_json, tree_snapshot, write_json


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def ran(root: Path) -> list[str]:
    log = root.parent / "ran.log"
    return log.read_text().split() if log.exists() else []


#: each task logs its name beside the project (a file in it would be a run's output)
LOG = 'echo "$(basename "$PWD")" >> "$SHARIN_PROJECT_DIR/../ran.log"\n'


def test_clean_of_an_unsaved_component_keeps_it(cli: Cli, tmp_path: Path) -> None:
    """new, add, run, clean: the component, its script and its JSON stay."""
    cli("new", tmp_path / "p")
    root = tmp_path / "p.wheel"
    cli("add", root, "task", "a", "--script-text", "echo hi > out.txt; mkdir res; echo 1 > res/r")
    cli("run", root)
    before = tree_snapshot(root)
    # not a terminal: clean would throw away unsaved work, so it refuses and changes nothing
    err = cli("clean", root, code=2).stderr
    assert "unsaved changes" in err and "--discard-unsaved" in err and "sharin save" in err
    assert "a/run.sh" in err
    assert tree_snapshot(root) == before

    cli("clean", root, "--keep-unsaved")
    a = root / "a"
    assert sorted(x.name for x in a.iterdir()) == ["cmp.wheel.json", "run.sh"]
    assert read_json(a / "cmp.wheel.json")["state"] == "not-started"
    assert read_json(root / "prj.wheel.json")["state"] == "not-started"
    assert (a / "run.sh").read_text() == "#!/bin/sh\necho hi > out.txt; mkdir res; echo 1 > res/r\n"
    # the run's changes to the JSON files are gone, the user's (staged) ones stay
    assert git(root, "status", "--porcelain", "a") == "A  a/cmp.wheel.json\nA  a/run.sh\n"
    cli("run", root)
    assert (a / "out.txt").exists()

    # with explicit consent, clean goes back to the last save as WHEEL's does
    cli("clean", root, "--discard-unsaved")
    assert not a.exists()
    assert git(root, "status", "--porcelain") == ""


def test_clean_keeps_files_the_user_made_before_after_and_between_runs(
    cli: Cli, project: Project
) -> None:
    root = project.root
    a = sharin.add_task(project, "a", "echo out > out.txt\necho more >> notes.txt")
    sharin.save(project)
    (a.directory / "notes.txt").write_text("my notes\n")  # never saved nor staged
    (a.directory / "data").mkdir()
    (a.directory / "data" / "input.csv").write_text("1,2\n")
    cli("run", root)
    assert (a.directory / "notes.txt").read_text() == "my notes\nmore\n"
    (a.directory / "later.txt").write_text("written after the run\n")
    (a.directory / "out.txt").write_text("edited by hand\n")  # a run made it; changed since
    result = cli("clean", root)
    assert "kept (a run made them, but they were changed since): a/out.txt" in result.stderr
    kept = sorted(str(x.relative_to(a.directory)) for x in a.directory.rglob("*"))
    assert kept == [
        "cmp.wheel.json",
        "data",
        "data/input.csv",
        "later.txt",
        "notes.txt",
        "out.txt",
        "run.sh",
    ]


def test_a_user_file_made_between_a_failure_and_the_resumed_run_stays(
    cli: Cli, project: Project
) -> None:
    root = project.root
    a = sharin.add_task(project, "a", "echo x > made.txt\n[ -e ../go ]")
    sharin.save(project)
    cli("run", root, code=1)
    (root / "go").write_text("")  # the user's fix, between the attempts
    cli("run", root)
    cli("clean", root)
    assert (root / "go").exists()
    assert not (a.directory / "made.txt").exists()


def test_clean_removes_delivered_inputs_loop_trips_and_instances(project: Project) -> None:
    root = project.root
    seed = sharin.add_task(project, "seed", "echo s > seed.txt", outputs=["seed.txt"])
    use = sharin.add_task(project, "use", "cat in.txt > copy.txt")
    sharin.connect_files(project, seed, "seed.txt", use, "in.txt")
    loop = sharin.add_component(project, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(project, "body", "echo $WHEEL_CURRENT_INDEX > i.txt", parent=loop)
    ps = sharin.add_component(project, "parameterStudy", "ps")
    calc = sharin.add_task(project, "calc", "cat input.txt > result.txt", parent=ps)
    (calc.directory / "input.txt").write_text("n={{ N }}\n")
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [{"targetNode": calc.id, "targetName": "input.txt"}],
            "params": [{"keyword": "N", "min": 1, "max": 2, "step": 1}],
            "scatter": [],
            "gather": [],
        },
    )
    sharin.save(project)
    saved = tree_snapshot(root)
    assert sharin.run(project).ok
    assert (root / "use" / "in.txt").is_symlink()
    assert (root / "loop_0").is_dir() and (root / "loop_1").is_dir()
    assert any(x.name.startswith("ps_N_") for x in root.iterdir())

    sharin.clean(project)

    def content(snap: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
        # the JSON files the run changed are written back: same content, a new mtime
        return {
            k: v[:2] + v[3:] if v[0] == "file" else v
            for k, v in snap.items()
            if k.split("/")[0] not in (".git", ".sharin")
        }

    # as saved: nothing a run made is left, nothing else was touched
    assert content(tree_snapshot(root)) == content(saved)
    assert git(root, "status", "--porcelain") == ""


def test_clean_of_a_component_touches_nothing_else(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    loop = sharin.add_component(project, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(project, "body", "echo $WHEEL_CURRENT_INDEX > i.txt", parent=loop)
    sharin.add_component(project, "for", "loop2", start=0, end=0, step=1)
    sharin.add_task(project, "b2", "true", parent="loop2")
    sharin.save(project)
    cli("run", root)
    assert (root / "loop_0").is_dir() and (root / "loop2_0").is_dir()
    cli("clean", root, "loop")
    assert not (root / "loop_0").exists() and not (root / "loop_1").exists()
    assert (root / "loop2_0").is_dir() and (root / "a" / "out.txt").exists()
    assert read_json(root / "loop" / "cmp.wheel.json")["state"] == "not-started"
    assert read_json(root / "a" / "cmp.wheel.json")["state"] == "finished"


def test_a_failed_clean_removes_nothing(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    sharin.save(project)
    cli("run", root)
    sharin.set_property(project, "a", "description", "unsaved")
    before = tree_snapshot(root)
    (root / ".git" / "index.lock").write_text("")  # git cannot discard now
    try:
        err = cli("clean", root, "--discard-unsaved", code=2).stderr
    finally:
        (root / ".git" / "index.lock").unlink()
    assert "index.lock" in err
    after = tree_snapshot(root)
    for snap in (before, after):  # the run history may have been read (and checkpointed)
        for k in [k for k in snap if k.startswith(".sharin/journal")]:
            del snap[k]
    assert after == before


# ---------------------------------------------------------------------- the next run


def test_the_run_after_a_clean_starts_afresh(project: Project) -> None:
    root = project.root
    a = sharin.add_task(project, "a", LOG + "echo a > a.txt", outputs=["a.txt"])
    b = sharin.add_task(project, "b", LOG + "[ -e ../go ] && cat a.txt")
    sharin.connect_files(project, a, "a.txt", b, "a.txt")
    sharin.save(project)
    assert sharin.run(project).state == "failed"  # the last run can be resumed
    sharin.clean(project)
    (root / "go").write_text("")
    result = sharin.run(project)
    assert result.ok and not result.resumed
    assert ran(root) == ["a", "b", "a", "b"]  # a ran again: its output was gone


def test_a_partial_clean_reruns_what_it_cleaned(project: Project) -> None:
    root = project.root
    wf = sharin.add_component(project, "workflow", "wf")
    a = sharin.add_task(project, "a", LOG + "echo a > a.txt", parent=wf)
    b = sharin.add_task(project, "b", LOG + "echo b > b.txt", parent=wf)
    c = sharin.add_task(project, "c", LOG + "[ -e ../go ]")
    sharin.connect(project, wf, c)
    sharin.save(project)
    assert sharin.run(project).state == "failed"
    sharin.clean(project, "wf/a")
    assert not (a.directory / "a.txt").exists() and (b.directory / "b.txt").exists()
    (root / "go").write_text("")
    result = sharin.run(project)
    assert result.ok and result.resumed
    log = ran(root)
    assert sorted(log[:2]) == ["a", "b"] and log[2:] == ["c", "a", "c"]


def test_journal_cleans() -> None:
    from sharin.engine._journal import clean_covers

    assert clean_covers("", "x/y") and clean_covers("", "")
    assert clean_covers("a", "a") and clean_covers("a", "a/b")
    assert clean_covers("a/b", "a")  # the container must be entered again
    assert not clean_covers("a", "ab") and not clean_covers("a", "b") and not clean_covers("a", "")


def test_journal_marks_cleans(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    try:
        assert not j.cleaned_after("a", 0.0)
        j.mark_cleaned("a", at=100.0)
        assert j.cleaned_after("a/b", 99.0) and not j.cleaned_after("a/b", 101.0)
        assert not j.cleaned_after("", 99.0) and not j.cleaned_after("b", 0.0)
        j.mark_cleaned("", at=200.0)
        assert j.cleaned_after("", 150.0) and j.cleaned_after("b", 150.0)
        assert j.cleans() == [(100.0, "a"), (200.0, "")]
    finally:
        j.close()


# ---------------------------------------------------------------------- broken projects


def test_revert_and_clean_work_when_a_component_file_is_corrupt(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    sharin.save(project)
    cli("run", root)
    good = git(root, "show", "HEAD:a/cmp.wheel.json")
    cmp = root / "a" / "cmp.wheel.json"
    cmp.write_text("{ broken")
    assert "malformed JSON" in cli("validate", root, code=2).stderr
    cli("revert", root)
    assert cmp.read_text() == good
    cmp.write_text("{ broken")
    err = cli("clean", root, code=2).stderr
    assert "a/cmp.wheel.json" in err and "unsaved" in err
    cli("clean", root, "--keep-unsaved")
    assert cmp.read_text() == "{ broken"
    cmp.write_text("{ broken")
    cli("clean", root, "a", "--discard-unsaved")
    assert cmp.read_text() == good
    assert not (root / "a" / "out.txt").exists()


def test_revert_says_it_discards(cli: Cli) -> None:
    out = cli("revert", "--help").stdout
    assert "Throw away" in out and "unsaved" in out


# ---------------------------------------------------------------------- staging


def test_everything_add_writes_is_staged(cli: Cli, project: Project) -> None:
    root = project.root
    cli("add", root, "task", "a", "--script-text", "echo hi")
    sharin.add_task(project, "b", "echo b > o", outputs=["o"])
    script = root.parent / "mine.sh"
    script.write_text("echo mine\n")
    cli("add", root, "task", "c", "--script-file", script)
    status = git(root, "status", "--porcelain", "--untracked-files=all", "a", "b", "c")
    assert status.splitlines() == [
        "A  a/cmp.wheel.json",
        "A  a/run.sh",
        "A  b/cmp.wheel.json",
        "A  b/run.sh",
        "A  c/cmp.wheel.json",
        "A  c/mine.sh",
    ]
    assert json.loads(git(root, "show", ":b/cmp.wheel.json"))["outputFiles"][0]["name"] == "o"


def test_add_refuses_a_script_name_outside_the_component(cli: Cli, project: Project) -> None:
    err = cli("add", project.root, "task", "a", "--script", "../x.sh", "--script-text", "x", code=2)
    assert "must be a file name" in err.stderr
    assert not (project.root / "x.sh").exists() and not (project.root / "a").exists()
    err = cli("add", project.root, "task", "a", "--script", "cmp.wheel.json", code=2)
    assert "WHEEL's own file" in err.stderr
    binary = project.root.parent / "bin.dat"
    binary.write_bytes(b"\xff\xfe\x00")
    err = cli("add", project.root, "task", "b", "--script-file", binary, code=2)
    assert "not UTF-8 text" in err.stderr


@pytest.mark.parametrize("flag", ["--discard-unsaved", "--keep-unsaved"])
def test_clean_flags(cli: Cli, project: Project, flag: str) -> None:
    cli("clean", project.root, flag)
    assert (
        "exclude each other"
        in cli("clean", project.root, "--discard-unsaved", "--keep-unsaved", code=2).stderr
    )


def test_clean_asks_before_it_throws_unsaved_changes_away(project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    assert sharin.run(project).ok
    asked: list[list[str]] = []

    def no(paths: list[str]) -> bool:
        asked.append(paths)
        return False

    with pytest.raises(sharin.ProjectError, match="nothing was changed"):
        sharin.clean(project, confirm=no)
    assert asked == [["a/cmp.wheel.json", "a/run.sh", "cmp.wheel.json", "prj.wheel.json"]]
    assert (root / "a" / "out.txt").exists()
    assert api.unsaved_changes(project) == asked[0]
    result = sharin.clean(project, confirm=lambda paths: True)
    assert result.discarded == asked[0] and "a/out.txt" in result.removed
    assert not (root / "a").exists() and git(root, "status", "--porcelain") == ""


def test_clean_does_not_follow_a_link_out_of_the_project(cli: Cli, project: Project) -> None:
    root = project.root
    elsewhere = root.parent / "elsewhere"
    (elsewhere / "t").mkdir(parents=True)
    (elsewhere / "t" / "cmp.wheel.json").write_text("{}")
    (elsewhere / "t" / "status.wheel.txt").write_text("x")
    (root / "link").symlink_to(elsewhere)
    sharin.save(project)
    err = cli("clean", root, "link/t", code=2).stderr
    assert "no component 'link/t'" in err
    assert (elsewhere / "t" / "status.wheel.txt").exists()
    cli("clean", root)
    assert (elsewhere / "t" / "status.wheel.txt").exists() and (root / "link").is_symlink()


def _on_a_terminal(answer: str, *args: object) -> tuple[int, str]:
    """Run ``sharin ARGS`` with a terminal for stdin and stdout, typing ``answer``."""
    import os
    import pty
    import select
    import sys
    import time

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(sys.executable, [sys.executable, "-m", "sharin", *map(str, args)])
    out = b""
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not typed and b"Go on?" in out:
            os.write(fd, answer.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@pytest.mark.slow
def test_on_a_terminal_clean_and_revert_ask_first(project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    assert sharin.run(project).ok
    before = tree_snapshot(root)
    code, out = _on_a_terminal("n", "clean", root)
    assert code == 2 and "a/run.sh" in out and "nothing was changed" in out
    assert tree_snapshot(root) == before
    code, out = _on_a_terminal("n", "revert", root)
    assert code == 0 and "nothing was changed" in out
    assert tree_snapshot(root) == before
    code, out = _on_a_terminal("y", "clean", root)
    assert code == 0, out
    assert not (root / "a").exists() and git(root, "status", "--porcelain") == ""


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ref=st.lists(
        st.sampled_from(["a", "..", ".", "link", "t", "", "a_0", "/", "zz"]), max_size=4
    ).map("/".join)
)
def test_any_component_argument_is_a_clear_error_or_a_clean_inside(
    tmp_path: Path, ref: str
) -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(dir=tmp_path))
    p = sharin.new_project(base / "p")
    sharin.add_task(p, "a", "true")
    outside = base / "t"
    outside.mkdir()
    (outside / "cmp.wheel.json").write_text('{"ID": "x", "subComponent": true}')
    (outside / "status.wheel.txt").write_text("keep")
    (p.root / "link").symlink_to(base)
    sharin.save(p)
    try:
        sharin.clean(p, ref)
    except sharin.ProjectError as e:
        assert "Traceback" not in str(e)
    assert (outside / "status.wheel.txt").read_text() == "keep"


def test_a_partial_clean_of_a_loop_reruns_its_pruned_trips(project: Project) -> None:
    root = project.root
    where = 'echo "${PWD#"$SHARIN_PROJECT_DIR"/}" >> "$SHARIN_PROJECT_DIR/../ran.log"\n'
    loop = sharin.add_component(project, "for", "loop", start=0, end=2, step=1, keep=1)
    sharin.add_task(project, "body", where, parent=loop)
    sharin.add_component(project, "workflow", "loop_x")  # a component, not a trip
    sharin.add_task(project, "other", where, parent="loop_x")
    c = sharin.add_task(project, "c", LOG + "[ -e ../go ]")
    sharin.connect(project, loop, c)
    sharin.save(project)
    assert sharin.run(project).state == "failed"
    assert not (root / "loop_0").exists()  # pruned by keep
    sharin.clean(project, "loop")
    (root / "go").write_text("")
    result = sharin.run(project)
    assert result.ok and result.resumed
    log = ran(root)
    assert log.count("loop_0/body") == 2 and log.count("loop_2/body") == 2
    assert log.count("loop_x/other") == 1


@pytest.mark.slow
def test_clean_after_the_engine_was_killed(project: Project, procs: Processes) -> None:
    """The attempt has no end list: what it made before its last record goes, later files stay."""
    import os
    import signal
    import time

    from ..helpers import journal_tasks, wait_for

    root = project.root
    fast = 'echo x > out.txt; mkdir res; touch res/r; [ -e "$SHARIN_PROJECT_DIR/../fast" ]'
    sharin.add_task(project, "long", fast + " || sleep 30")
    sharin.save(project)
    engine = procs.start("run", root)
    wait_for((root / "long" / "res" / "r").exists, "the task to write")
    wait_for(lambda: journal_tasks(root, 1)["long"].handle is not None, "the handle")
    handle = journal_tasks(root, 1)["long"].handle
    assert handle is not None
    task = int(json.loads(handle)["id"])
    procs.track_group(task)
    engine.kill()
    engine.wait()
    os.killpg(task, signal.SIGKILL)
    time.sleep(1.5)
    (root / "long" / "mine.txt").write_text("written after the engine died\n")
    result = sharin.clean(project)
    assert sorted(result.removed) == ["long/out.txt", "long/res/r"]
    assert sorted(x.name for x in (root / "long").iterdir()) == [
        "cmp.wheel.json",
        "mine.txt",
        "run.sh",
    ]
    (root.parent / "fast").write_text("")
    assert not sharin.run(project).resumed  # and the next run starts afresh


_paths = st.lists(st.sampled_from(["a", "b", "a_0", "c"]), max_size=3).map("/".join)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cleans=st.lists(st.tuples(st.integers(1, 50), _paths), max_size=6), key=_paths)
def test_journal_last_clean_is_the_last_covering_clean(
    tmp_path: Path, cleans: list[tuple[int, str]], key: str
) -> None:
    import tempfile

    from sharin.engine._journal import clean_covers

    j = Journal(Path(tempfile.mkdtemp(dir=tmp_path)) / "j.sqlite")
    try:
        for at, prefix in cleans:
            j.mark_cleaned(prefix, at=float(at))
        covering = [float(at) for at, prefix in cleans if clean_covers(prefix, key)]
        assert j.last_clean(key) == (max(covering) if covering else None)
    finally:
        j.close()


def test_status_does_not_offer_to_resume_a_cleaned_run(project: Project) -> None:
    sharin.add_task(project, "a", "true")
    sharin.save(project)
    j = Journal(project.root / ".sharin" / "journal.sqlite")
    j.new_run({})  # an engine died in it
    j.close()
    assert sharin.status(project).interrupted
    sharin.clean(project)
    assert not sharin.status(project).interrupted


def test_clean_works_when_the_run_history_is_unreadable(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    sharin.save(project)
    cli("run", root)
    (root / ".sharin" / "journal.sqlite").write_bytes(b"not a database" * 100)
    for extra in root.joinpath(".sharin").glob("journal.sqlite-*"):
        extra.unlink()
    cli("clean", root)
    assert not (root / "a" / "status.wheel.txt").exists()
    assert read_json(root / "a" / "cmp.wheel.json")["state"] == "not-started"
