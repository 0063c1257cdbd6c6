"""Editing verbs: refused while a run holds the project, remove/disconnect, names, cycles, help."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sharin
from sharin import Project
from sharin.interfaces import cli as cli_module

from ..conftest import Cli, Processes
from ..helpers import journal_tasks, read_json, tree_snapshot, wait_for


def project_files(root: Path) -> dict[str, tuple[object, ...]]:
    """The project as the user sees it (sharin's own .sharin/ and git's .git/ left out)."""
    return {
        k: v for k, v in tree_snapshot(root).items() if k.split("/")[0] not in (".sharin", ".git")
    }


def edited_files(root: Path) -> dict[str, object]:
    """What an edit changes: the files' contents, without the fields a running engine writes
    (states and WHEEL's bookkeeping, which its state mirror writes a moment after a task starts)."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".sharin", ".git") or path.is_dir() or path.name == "status.wheel.txt":
            continue
        if path.name.endswith(".wheel.json"):
            data = read_json(path)
            for name in (*sharin.model.RUN_FIELDS, "state"):
                data.pop(name, None)
            out[str(rel)] = data
        else:
            out[str(rel)] = path.read_bytes()
    return out


def track_task(procs: Processes, root: Path, key: str) -> None:
    """Have the fixture kill the task's own session too, should the test fail."""
    wait_for(lambda: journal_tasks(root, 1)[key].handle is not None, "the task's handle")
    procs.track_group(int(json.loads(journal_tasks(root, 1)[key].handle or "")["id"]))


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


# ---------------------------------------------------------------------- busy


def test_every_edit_is_refused_while_an_engine_runs(
    cli: Cli, procs: Processes, project: Project
) -> None:
    root = project.root
    sharin.add_task(project, "long", "touch started; while [ ! -e ../go ]; do sleep 0.05; done")
    sharin.add_task(project, "other", "true")
    sharin.add_component(project, "workflow", "wf")
    sharin.connect(project, "long", "other")
    engine = procs.start("run", root)
    wait_for((root / "long" / "started").exists, "the task to start")
    track_task(procs, root, "long")
    assert sharin.status(root).engine_pid == engine.pid
    # the state mirror writes "running" a moment after the task started: wait for it, so that
    # what is compared below is what the edits could change
    wait_for(
        lambda: read_json(root / "long" / "cmp.wheel.json")["state"] == "running",
        "the task's file to say running",
    )
    before = edited_files(root)

    for args in (
        ("set", root, "other", "retry=2"),
        ("set", root, "other", "name=renamed"),
        ("add", root, "task", "new", "--script-text", "true"),
        ("connect", root, "other", "wf"),
        ("connect", root, "long", "other", "--file", "a:b"),
        ("disconnect", root, "long", "other"),
        ("remove", root, "wf", "--yes"),
    ):
        r = cli(*args, code=4)
        assert f"engine pid {engine.pid}" in r.stderr and "`sharin stop`" in r.stderr, r.stderr
    with pytest.raises(sharin.BusyError, match="while it runs"):
        sharin.set_property(root, "other", "retry", 2)
    with pytest.raises(sharin.BusyError):
        sharin.add_task(project, "new", "true")
    with pytest.raises(sharin.BusyError):
        sharin.remove_component(root, "wf", force=True)
    assert edited_files(root) == before

    (root / "go").touch()
    assert engine.wait(timeout=30) == 0
    cli("set", root, "other", "retry=2")  # the run is over: edits go through again
    assert read_json(root / "other" / "cmp.wheel.json")["retry"] == 2


def test_a_run_cannot_start_in_the_middle_of_an_edit(procs: Processes, project: Project) -> None:
    sharin.add_task(project, "t", "touch ran")
    with sharin.model.edit_lock(project.root):
        r = procs.run("run", project.root, code=4)
        assert "another sharin command is changing the project" in r.stderr
        assert "None" not in r.stderr
    assert not (project.root / "t" / "ran").exists()
    procs.run("run", project.root)
    assert (project.root / "t" / "ran").exists()


def test_an_edit_waits_for_another_short_one(project: Project) -> None:
    import threading
    import time

    sharin.add_task(project, "a", "true")
    held = threading.Event()

    def other_command() -> None:
        with sharin.model.edit_lock(project.root):
            held.set()
            time.sleep(0.3)

    t = threading.Thread(target=other_command)
    t.start()
    held.wait(5)
    t0 = time.monotonic()
    sharin.set_property(project.root, "a", "retry", 1)  # waits instead of failing
    assert time.monotonic() - t0 >= 0.2
    t.join()
    assert read_json(project.root / "a" / "cmp.wheel.json")["retry"] == 1


def test_edits_within_one_command_share_the_lock(project: Project) -> None:
    with sharin.interfaces.api.editing(project.root) as p:
        sharin.add_task(p, "a", "true")
        sharin.set_property(p, "a", "retry", 1)
        with p.batch():
            sharin.add_task(p, "b", "true")
    assert [c.rel for c in Project.open(project.root).components()] == ["a", "b"]


# ---------------------------------------------------------------------- demo for demo.wheel


def test_a_project_may_be_named_without_its_suffix(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli("new", "demo")
    cli("add", "demo", "task", "t", "--script-text", "echo hi")
    cli("validate", "demo")
    assert "run 1 finished" in cli("run", "demo").stdout
    assert cli("log", "demo", "t").stdout == "hi\n"
    assert "project demo: finished" in cli("status", "demo").stdout
    assert cli("save", "demo").stdout.strip() == "saved"
    # a directory of that very name wins: no guessing then
    (tmp_path / "other").mkdir()
    cli("new", "other")
    assert "not a project" in cli("status", "other", code=2).stderr


# ---------------------------------------------------------------------- disconnect, remove


def test_disconnect_flow_file_and_else_edges(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo hi > out.txt", outputs=["out.txt"])
    sharin.add_task(project, "b", "true")
    sharin.add_component(project, "if", "cond", condition="true")
    cli("connect", root, "a", "b")
    cli("connect", root, "a", "b", "--file", "out.txt:in.txt", "--file", "log.txt")
    cli("connect", root, "cond", "b", "--else")
    cli("connect", root, "cond", "a")

    assert (
        "removed a:out.txt → b:in.txt"
        in cli("disconnect", root, "a", "b", "--file", "out.txt:in.txt").stdout
    )
    a, b = read_json(root / "a" / "cmp.wheel.json"), read_json(root / "b" / "cmp.wheel.json")
    outs = {f["name"]: f["dst"] for f in a["outputFiles"]}
    assert outs["out.txt"] == [] and outs["log.txt"] == [{"dstNode": b["ID"], "dstName": "log.txt"}]
    assert {f["name"]: f["src"] for f in b["inputFiles"]}["in.txt"] == []

    assert "removed a → b" in cli("disconnect", root, "a", "b").stdout
    a, b = read_json(root / "a" / "cmp.wheel.json"), read_json(root / "b" / "cmp.wheel.json")
    cond = read_json(root / "cond" / "cmp.wheel.json")
    assert a["next"] == [] and b["previous"] == [cond["ID"]]

    cli("disconnect", root, "cond", "b", "--else")
    cond, b = read_json(root / "cond" / "cmp.wheel.json"), read_json(root / "b" / "cmp.wheel.json")
    assert cond["else"] == [] and cond["next"] == [a["ID"]] and b["previous"] == []

    before = project_files(root)
    assert "no flow edge a → b" in cli("disconnect", root, "a", "b", code=2).stderr
    r = cli("disconnect", root, "cond", "a", "--else", code=2)
    assert "no else edge cond → a" in r.stderr
    r = cli("disconnect", root, "a", "b", "--file", "out.txt:in.txt", code=2)
    assert "no file edge a:out.txt → b:in.txt" in r.stderr
    assert "no component 'zz'" in cli("disconnect", root, "a", "zz", code=2).stderr
    assert project_files(root) == before
    cli("validate", root)


def test_disconnect_files_between_a_workflow_and_its_children(project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    inner = sharin.add_task(project, "inner", "true", parent=wf)
    sharin.connect_files(project, "wf", "in.txt", "wf/inner", "x.txt")  # parent to child
    sharin.connect_files(project, "inner", "y.txt", "wf", "out.txt")  # child to parent
    sharin.disconnect_files(project.root, "wf", "in.txt", "wf/inner", "x.txt")
    sharin.disconnect_files(project.root, inner.id, "y.txt", wf.id, "out.txt")
    w, i = read_json(wf.file), read_json(inner.file)
    assert [f["forwardTo"] for f in w["inputFiles"]] == [[]]
    assert [f["origin"] for f in w["outputFiles"]] == [[]]
    assert [f["src"] for f in i["inputFiles"]] == [[]]
    assert [f["dst"] for f in i["outputFiles"]] == [[]]


def test_remove_a_component_with_files_needs_consent(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo hi > out.txt", outputs=["out.txt"])
    sharin.add_task(project, "b", "cat in.txt")
    sharin.connect_files(project, "a", "out.txt", "b", "in.txt")
    sharin.connect(project, "a", "b")
    sharin.save(project)
    (root / "b" / "notes.txt").write_text("mine, never saved\n")
    before = project_files(root)

    r = cli("remove", root, "b", code=2)  # not a terminal: nothing asked, nothing removed
    assert "b holds 2 files of yours" in r.stderr and "--yes" in r.stderr
    assert "1 not saved" in r.stderr
    assert project_files(root) == before
    with pytest.raises(sharin.ProjectError, match="force=True"):
        sharin.remove_component(root, "b")
    assert project_files(root) == before

    r = cli("remove", root, "b", "--yes")
    assert "removed b; 1 file never saved is gone" in r.stdout
    assert "until you save, `sharin revert` brings it back as the last save has it" in r.stdout
    assert not (root / "b").exists()
    a = read_json(root / "a" / "cmp.wheel.json")
    assert a["next"] == [] and a["outputFiles"] == [{"name": "out.txt", "dst": []}]
    assert "./b" not in read_json(root / "prj.wheel.json")["componentPath"].values()
    assert not any(n.startswith(".removing") for n in os.listdir(root))
    cli("validate", root)

    cli("revert", root)
    assert (root / "b" / "run.sh").exists() and not (root / "b" / "notes.txt").exists()
    assert read_json(root / "a" / "cmp.wheel.json")["next"] != []


def test_remove_a_component_without_files_of_yours(cli: Cli, project: Project) -> None:
    root = project.root
    cli("add", root, "workflow", "wf")
    cli("add", root, "parameterStudy", "ps", "--parent", "wf")  # only its empty skeleton
    out = cli("remove", root, "wf").stdout
    assert "removed wf" in out and "revert" not in out  # never saved: nothing to bring back
    assert not (root / "wf").exists() and Project.open(root).components() == []
    assert "root workflow cannot be removed" in cli("remove", root, ".", code=2).stderr


def test_remove_asks_on_a_terminal(procs: Processes, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    sharin.add_task(project, "b", "true")
    for answer, gone in ((b"n\n", False), (b"y\n", True)):
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            procs.argv("remove", root, "a"),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        os.write(master, answer)
        out, err = proc.communicate(timeout=30)
        os.close(master)
        assert proc.returncode == 0, err
        assert b"a/run.sh (unsaved)" in err and b"remove a and 1 file of yours" in out + err
        assert (root / "a").exists() is not gone
        assert (b"nothing removed" in out) is not gone


# ---------------------------------------------------------------------- add


def test_add_help_lists_the_component_types(cli: Cli) -> None:
    out = " ".join(cli("add", "--help").stdout.split())
    for t in ("task", "workflow", "parameterStudy", "foreach", "stepjobTask", "storage"):
        assert t in out
    assert "TYPE is one of:" in out
    verbs = cli("--help").stdout
    assert "disconnect" in verbs and "remove" in verbs


def test_add_a_parameter_study_writes_its_setting_file(cli: Cli, project: Project) -> None:
    root = project.root
    cli("add", root, "parameterStudy", "ps")
    assert read_json(root / "ps" / "parameterSetting.json") == {
        "version": 2,
        "targetFiles": [],
        "params": [],
        "scatter": [],
        "gather": [],
    }
    assert "ps/parameterSetting.json" in git(root, "ls-files", "--stage")  # revert removes it
    r = cli("add", root, "parameterStudy", "p2", "--set", "parameterFile=../outside.json", code=2)
    assert "parameterFile" in r.stderr
    assert not (project.root.parent / "outside.json").exists()
    assert not (root / "p2").exists()


def test_components_are_named_by_path_or_name_everywhere(cli: Cli, project: Project) -> None:
    root = project.root
    cli("add", root, "workflow", "wf")
    cli("add", root, "task", "inner", "--parent", "wf", "--script-text", "cat x.txt > y.txt")
    cli("add", root, "task", "feed", "--script-text", "echo fed > in.txt")
    cli("connect", root, "feed", "wf", "--file", "in.txt")  # names, not IDs
    cli("connect", root, "wf", "wf/inner", "--file", "in.txt:x.txt")  # a path
    cli("connect", root, "inner", "wf", "--file", "y.txt:y.txt")  # a unique name
    cli("set", root, "wf/inner", "retry=1")
    cli("run", root)
    assert (root / "wf" / "inner" / "y.txt").read_text() == "fed\n"
    assert cli("log", root, "wf/inner").stdout == ""


# ---------------------------------------------------------------------- cycles


def test_connect_refuses_a_cycle_at_once(cli: Cli, project: Project) -> None:
    root = project.root
    for name in ("a", "b", "c"):
        sharin.add_task(project, name, "true")
    cli("connect", root, "a", "b")
    cli("connect", root, "b", "c", "--file", "x.txt")
    before = project_files(root)
    r = cli("connect", root, "c", "a", code=2)
    assert "would make a cycle (c → a → b → c)" in r.stderr
    r = cli("connect", root, "c", "a", "--file", "y.txt", code=2)
    assert "would make a cycle (c → a → b → c)" in r.stderr
    with pytest.raises(sharin.ProjectError, match="cycle"):
        sharin.connect(root, "b", "a")
    assert project_files(root) == before
    cli("connect", root, "a", "c")  # a shortcut is no cycle
    cli("validate", root)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.booleans()), max_size=10))
def test_connect_never_leaves_a_cycle(
    tmp_path_factory: pytest.TempPathFactory, edges: list[tuple[int, int, bool]]
) -> None:
    p = Project.create(tmp_path_factory.mktemp("cyc") / "p", git=False)
    names = ["n0", "n1", "n2", "n3"]
    for n in names:
        sharin.add_task(p, n, "true")
    for s, d, by_file in edges:
        if s == d:
            continue
        try:
            if by_file:
                sharin.connect_files(p, names[s], "f", names[d], f"f{s}")
            else:
                sharin.connect(p, names[s], names[d])
        except sharin.ProjectError as e:
            assert "would make a cycle" in str(e)
    assert not [x for x in sharin.validate(p.root) if "cycle" in x.message]


# ---------------------------------------------------------------------- set


def test_set_warns_about_a_field_wheel_does_not_have(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    r = cli("set", root, "a", "retyr=2", "retry=3")
    assert "warning: a: a task in WHEEL has no field 'retyr'" in r.stderr
    assert "'retry'" not in r.stderr
    data = read_json(root / "a" / "cmp.wheel.json")
    assert (data["retyr"], data["retry"]) == (2, 3)
    r = cli("add", root, "for", "loop", "--set", "start=0", "--set", "strat=1")
    assert "a for in WHEEL has no field 'strat'" in r.stderr and "'start'" not in r.stderr
    r = cli("set", root, "loop", "end=1", "step=1", "keep=2", "indexList=[]")
    assert "no field 'indexList'" in r.stderr and "'keep'" not in r.stderr


@pytest.mark.parametrize(
    "later",
    ["script=../../x", "name=bad/name", "name=b", "retry=-1", "condition=/etc/passwd"],
)
def test_set_of_several_fields_one_refused_changes_none(
    cli: Cli, project: Project, later: str
) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    sharin.add_task(project, "b", "true")
    before = project_files(root)
    r = cli("set", root, "a", "retry=3", "name=renamed", later, code=2)
    assert "error:" in r.stderr and "Traceback" not in r.stderr
    assert project_files(root) == before


@pytest.mark.parametrize("verb", ["connect", "disconnect"])
def test_file_edges_one_refused_makes_none(cli: Cli, project: Project, verb: str) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    sharin.add_task(project, "b", "true")
    if verb == "disconnect":
        cli("connect", root, "a", "b", "--file", "o1:i1", "--file", "o2:i2")
    before = edited_files(root)  # put back as it was: contents, not times
    bad = "o2:i9" if verb == "disconnect" else "../x:y"  # no such edge / leaves the directory
    r = cli(verb, root, "a", "b", "--file", "o1:i1", "--file", bad, code=2)
    assert "error:" in r.stderr and "Traceback" not in r.stderr
    assert edited_files(root) == before


def test_set_of_fields_and_a_new_name_does_all_of_it(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    cli("set", root, "a", "retry=3", "name=renamed", "description=x")
    data = read_json(root / "renamed" / "cmp.wheel.json")
    assert (data["retry"], data["name"], data["description"]) == (3, "renamed", "x")
    assert not (root / "a").exists()


# ---------------------------------------------------------------------- parsing


@given(
    st.text(st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), min_size=1),
    st.text(st.characters(blacklist_categories=["Cs"]), min_size=1),
)
def test_file_specs_split_at_the_first_colon(out: str, inp: str) -> None:
    assert cli_module._file_specs((f"{out}:{inp}",)) == [(out, inp)]
    assert cli_module._file_specs((out,)) == [(out, out)]
    for bad in (f"{out}:", f":{inp}", ":"):
        with pytest.raises(click.BadParameter, match="give both file names"):
            cli_module._file_specs((f"{out}:{inp}", bad))


def test_a_bad_edge_among_several_writes_none(cli: Cli, project: Project) -> None:
    sharin.add_task(project, "a", "true")
    sharin.add_task(project, "b", "true")
    before = project_files(project.root)
    r = cli("connect", project.root, "a", "b", "--file", "x:y", "--file", "z:", code=2)
    assert "'z:' is not OUT:IN" in r.stderr
    r = cli("set", project.root, "a", "retry=2", "ID=x", code=2)
    assert "'ID' cannot be changed" in r.stderr
    assert project_files(project.root) == before


def test_sharin_run_inside_an_event_loop_says_to_await(project: Project) -> None:
    import asyncio

    sharin.add_task(project, "t", "touch ran")

    async def notebook_cell() -> None:
        sharin.run(project)

    with pytest.raises(sharin.RunError, match=r"await sharin\.run_async\(\.\.\.\)"):
        asyncio.run(notebook_cell())
    assert not (project.root / "t" / "ran").exists()

    async def right_way() -> None:
        assert (await sharin.run_async(project)).ok

    asyncio.run(right_way())
    assert (project.root / "t" / "ran").exists()
