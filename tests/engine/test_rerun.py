"""A finished project run again: only what changed since it finished runs, and what depends on it.

Each task appends its name to ``$SHARIN_PROJECT_DIR/ran.log``, so the log tells which tasks ran.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import sharin
from sharin import Project, RunOptions
from sharin.engine import _fingerprint
from sharin.engine._journal import Journal

from ..conftest import Cli
from ..helpers import edit_json, lines, log_line, tree_snapshot


def ran(p: Project) -> list[str]:
    return lines(p.root / "ran.log")


def pipeline(p: Project) -> None:
    """hello -> (file out.txt:in.txt) shout; other stands alone; last runs after shout."""
    hello = sharin.add_task(
        p, "hello", log_line("hello") + "echo hello > out.txt", outputs=["out.txt"]
    )
    shout = sharin.add_task(
        p, "shout", log_line("shout") + "tr a-z A-Z < in.txt > up.txt", outputs=["up.txt"]
    )
    sharin.connect_files(p, hello, "out.txt", shout, "in.txt")
    sharin.add_task(p, "other", log_line("other"))
    sharin.add_task(p, "last", log_line("last"))
    sharin.connect(p, "shout", "last")


def test_a_finished_project_run_again_does_nothing(project: Project) -> None:
    pipeline(project)
    first = sharin.run(project)
    assert first.ok and sorted(ran(project)) == ["hello", "last", "other", "shout"]
    second = sharin.run(project)
    assert second.ok and second.run == first.run + 1
    assert second.nothing_to_do and second.since == first.run and second.reused == 4
    assert len(ran(project)) == 4  # nothing ran again
    runs = sharin.runs(project)
    assert [r.id for r in runs] == [1, 2]  # the run that did nothing is in the history
    assert runs[1].info["nothing_to_do"] is True and runs[1].info["reused_from"] == 1
    assert (project.root / "shout" / "up.txt").read_text() == "HELLO\n"


def test_a_changed_script_reruns_it_and_what_depends_on_it(project: Project) -> None:
    pipeline(project)
    sharin.run(project)
    (project.root / "hello" / "run.sh").write_text(
        "#!/bin/sh\n" + log_line("hello") + "echo bye > out.txt\n"
    )
    r = sharin.run(project)
    assert r.ok and not r.nothing_to_do
    assert ran(project)[4:] == ["hello", "shout", "last"]
    assert r.reasons == {"hello": "script changed", "shout": "after hello", "last": "after shout"}
    assert (project.root / "shout" / "up.txt").read_text() == "BYE\n"
    assert sharin.run(project).nothing_to_do


def test_properties_count_but_states_and_positions_do_not(project: Project) -> None:
    pipeline(project)
    sharin.run(project)

    def volatile(d: dict[str, object]) -> None:
        d["pos"] = {"x": 999, "y": 1}
        d["state"] = "failed"
        d["numFinished"] = 7

    for name in ("hello", "shout", "other", "last"):
        edit_json(project.root / name / "cmp.wheel.json", volatile)
    assert sharin.run(sharin.open_project(project.root)).nothing_to_do

    edit_json(project.root / "other" / "cmp.wheel.json", lambda d: d.update(env={"X": "1"}))
    r = sharin.run(sharin.open_project(project.root))
    assert r.reasons == {"other": "properties changed"}
    assert ran(project)[-1] == "other"


def test_user_files_and_outputs(project: Project) -> None:
    pipeline(project)
    (project.root / "other" / "data.csv").write_text("1,2\n")
    sharin.run(project)
    (project.root / "other" / "data.csv").write_text("1,3\n")
    (project.root / "other" / "new.txt").write_text("x\n")
    (project.root / "shout" / "up.txt").unlink()
    r = sharin.run(project)
    assert r.reasons == {
        "other": "data.csv changed; new.txt added",
        "shout": "output up.txt missing",
        "last": "after shout",
    }
    assert sorted(ran(project)[4:]) == ["last", "other", "shout"]
    assert (project.root / "shout" / "up.txt").read_text() == "HELLO\n"


def test_an_edited_output_reruns_its_maker_and_what_reads_it(project: Project) -> None:
    pipeline(project)
    sharin.run(project)
    # the delivered input changed where it came from, without hello running again
    (project.root / "hello" / "out.txt").write_text("edited\n")
    r = sharin.run(project)
    assert r.reasons["hello"] == "out.txt changed"
    assert r.reasons["shout"] == "after hello"
    plan_before = sharin.plan(project)
    assert all(not s.runs for s in plan_before)


def test_a_flow_edge_into_a_workflow_reruns_what_is_inside(project: Project) -> None:
    sharin.add_task(project, "a", log_line("a"))
    sharin.add_component(project, "workflow", "wf")
    sharin.add_task(project, "inner", log_line("inner"), parent="wf")
    sharin.add_task(project, "z", log_line("z"))
    sharin.connect(project, "a", "wf")
    sharin.connect(project, "wf", "z")
    sharin.run(project)
    assert sharin.run(project).nothing_to_do
    (project.root / "wf" / "inner" / "run.sh").write_text("#!/bin/sh\n" + log_line("inner2"))
    r = sharin.run(project)
    assert r.reasons == {"wf/inner": "script changed", "z": "after wf"}
    assert ran(project)[3:] == ["inner2", "z"]
    (project.root / "a" / "run.sh").write_text("#!/bin/sh\n" + log_line("a2"))
    r = sharin.run(project)
    assert r.reasons == {"a": "script changed", "wf/inner": "after a", "z": "after wf"}


def test_dry_run_lists_what_would_run_and_changes_nothing(cli: Cli, project: Project) -> None:
    pipeline(project)
    out = cli("run", project.root, "--dry-run").stdout
    assert "would run 4 of 4" in out and "hello: not run before" in out
    assert not (project.root / "ran.log").exists()
    cli("run", project.root)
    (project.root / "hello" / "run.sh").write_text("#!/bin/sh\necho changed > out.txt\n")
    before = tree_snapshot(project.root)
    out = cli("run", project.root, "--dry-run").stdout
    assert tree_snapshot(project.root) == before  # not a file changed, the journal included
    assert "would run 3 of 4 (reused: 1)" in out
    assert "hello: script changed" in out and "shout: after hello" in out
    assert "last: after shout" in out and "other" not in out
    steps = {s.key: s.reason for s in sharin.plan(project)}
    assert steps == {
        "hello": "script changed",
        "shout": "after hello",
        "other": None,
        "last": "after shout",
    }
    assert all(s.runs for s in sharin.plan(project, restart=True))
    (project.root / "hello" / "run.sh").write_text(
        "#!/bin/sh\n" + log_line("hello") + "echo hello > out.txt\n"
    )
    assert "nothing to do" in cli("run", project.root, "-n").stdout


def test_restart_runs_everything(project: Project) -> None:
    pipeline(project)
    sharin.run(project)
    r = sharin.run(project, options=RunOptions(resume=False))
    assert r.ok and not r.nothing_to_do and r.reused == 0
    assert len(ran(project)) == 8


def test_clean_makes_the_next_run_start_fresh(project: Project) -> None:
    pipeline(project)
    sharin.save(project, "pipeline")
    sharin.run(project)
    sharin.clean(project)
    r = sharin.run(sharin.open_project(project.root))
    # the outputs are gone: what made them runs again, and what depends on it
    assert {"hello", "shout", "last"} <= set(r.reasons)
    assert (project.root / "shout" / "up.txt").read_text() == "HELLO\n"


def test_the_run_records_unsaved_changes(project: Project) -> None:
    sharin.add_task(project, "a", "true")
    sharin.save(project, "a")
    sharin.run(project)
    runs = sharin.runs(project)
    assert runs[0].info["dirty"] is False
    (project.root / "a" / "run.sh").write_text("#!/bin/sh\necho edited\n")
    sharin.run(project)
    assert sharin.runs(project)[1].info["dirty"] is True


def test_a_hook_or_fsmonitor_of_the_project_does_not_run(project: Project) -> None:
    marker = project.root.parent / "hook-ran"
    hook = project.root / ".git" / "hooks" / "fsmon"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    with open(project.root / ".git" / "config", "a") as f:
        f.write(f"[core]\n\tfsmonitor = {hook}\n")
    sharin.add_task(project, "a", "true")
    marker.unlink(missing_ok=True)
    r = sharin.run(project)
    assert r.ok and not marker.exists()
    assert sharin.runs(project)[0].info["dirty"] is True


def test_the_journal_keeps_one_fingerprint_per_component(project: Project) -> None:
    pipeline(project)
    sharin.run(project)
    sharin.run(project, options=RunOptions(resume=False))
    db = sqlite3.connect(project.root / ".sharin" / "journal.sqlite")
    rows = db.execute("SELECT key, run, fingerprint FROM fingerprints ORDER BY key").fetchall()
    db.close()
    assert [(k, r) for k, r, _ in rows] == [("hello", 2), ("last", 2), ("other", 2), ("shout", 2)]
    fp = json.loads(rows[0][2])
    assert set(fp) == {"def", "files", "inputs"} and "run.sh" in fp["files"]


def test_a_readonly_journal_reads_without_writing(project: Project, tmp_path: Path) -> None:
    sharin.add_task(project, "a", "true")
    sharin.run(project)
    d = project.root / ".sharin"
    before = tree_snapshot(d)
    j = Journal.open_readonly(d / "journal.sqlite")
    assert j.last_run() is not None and "a" in j.fingerprints()
    j.close()
    assert tree_snapshot(d) == before


_keys = st.sampled_from(sorted(_fingerprint.VOLATILE_FIELDS))
_values = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())


@given(
    base=st.dictionaries(st.text(min_size=1, max_size=6), _values, max_size=5),
    noise=st.dictionaries(_keys, _values, max_size=5),
)
def test_volatile_fields_never_change_a_definition(
    base: dict[str, object], noise: dict[str, object]
) -> None:
    clean = {k: v for k, v in base.items() if k not in _fingerprint.VOLATILE_FIELDS}
    assert _fingerprint.definition({**clean, **noise}) == _fingerprint.definition(clean)
    if clean:
        k = next(iter(clean))
        changed = {**clean, k: [clean[k]]}
        assert _fingerprint.definition(changed) != _fingerprint.definition(clean)


def test_finished_in_the_interrupted_run_after_its_last_fingerprint(project: Project) -> None:
    """An engine that died after journaling a task finished but before keeping its new
    fingerprint: the resumed run does not run the task again (its record is newer)."""
    pipeline(project)
    sharin.run(project)
    (project.root / "other" / "run.sh").write_text("#!/bin/sh\n" + log_line("other2"))
    journal = Journal(project.root / ".sharin" / "journal.sqlite")
    run = journal.new_run({})
    journal.set_task(run, "other", "task", "finished", attempt=1, started=True, ended=True)
    journal.close()
    r = sharin.run(project)
    assert r.ok and r.resumed and r.run == run
    assert "other" not in r.reasons and "other2" not in ran(project)


def test_a_clean_invalidates_what_ran_before_it(project: Project) -> None:
    """Also a component whose outputs a clean does not touch runs again after it: the journal
    says which records a clean made void (``Journal.cleaned_after``)."""
    sharin.add_task(project, "a", log_line("a"))
    sharin.save(project, "a")
    sharin.run(project)
    assert ran(project) == ["a"]
    sharin.clean(project)
    assert not (project.root / "ran.log").exists()  # a file the run made: clean removed it
    r = sharin.run(sharin.open_project(project.root))
    assert r.ok and not r.nothing_to_do and ran(project) == ["a"]
    assert r.reasons == {"a": "cleaned since it last ran"}


_names = st.text(alphabet="abc./", min_size=1, max_size=6)
_fps = st.fixed_dictionaries(
    {
        "def": st.text(max_size=3),
        "files": st.dictionaries(_names, st.text(max_size=3), max_size=4),
        "inputs": st.dictionaries(_names, st.text(max_size=3), max_size=2),
    }
)


@given(old=_fps, new=_fps)
def test_a_reason_is_given_exactly_when_fingerprints_differ(
    old: dict[str, object], new: dict[str, object]
) -> None:
    from sharin import Component

    c = Component({"script": "run.sh", "outputFiles": [{"name": "a", "dst": []}]}, Path("/x"))
    assert _fingerprint.explain(c, old, old) is None
    reason = _fingerprint.explain(c, old, new)
    assert (reason is None) == (old == new)
    assert reason is None or reason.strip()
