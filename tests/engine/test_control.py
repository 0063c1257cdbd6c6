"""Control components in real runs, with WHEEL's semantics and file edges into and out of each.

workflow, if, for, while, foreach, break, continue, parameterStudy, source, viewer and storage;
nested combinations; ``keep``; and validation of every control component's own properties.

Each task appends ``$SHARIN_TASK`` (its instance key, e.g. ``loop_3/step``) to the project's
``ran.log``, so the log says exactly what ran, where and in which order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sharin
from sharin import Component, Project, RunOptions, RunResult
from sharin.engine import Event
from sharin.engine import _mirror as mirror_module
from sharin.model import write_json_atomic

from ..helpers import edit_json, journal_tasks, lines, read_json, write_json

LOG = 'echo "$SHARIN_TASK" >> "$SHARIN_PROJECT_DIR/ran.log"\n'
WHEEL_ENV = "env | grep '^WHEEL_' | grep -v '^WHEEL_LOCAL_PRJDIR=' | sort > env.txt\n"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project without git: these tests never save, and ``git init`` is slow."""
    return Project.create(tmp_path / "demo", git=False)


def ran(p: Project) -> list[str]:
    return lines(p.root / "ran.log")


def run_ok(p: Project, **kwargs: Any) -> RunResult:
    result = sharin.run(p.root, **kwargs)
    assert result.ok, result.failed
    return result


def run_with_events(p: Project, **kwargs: Any) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    result = sharin.run(p.root, on_event=events.append, **kwargs)
    return result, events


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def states(p: Project, run: int) -> dict[str, str]:
    return {k: r.state for k, r in journal_tasks(p.root, run).items()}


def model_components(p: Project) -> list[str]:
    """What a fresh load sees: instance directories made by a run are not components."""
    return sorted(c.rel for c in sharin.open_project(p.root).components())


def cmp_json(p: Project, rel: str) -> dict[str, Any]:
    return read_json(p.root / rel / "cmp.wheel.json")


def parameter_file(ps: Component, setting: dict[str, Any]) -> None:
    write_json(ps.directory / "parameterSetting.json", {"version": 2, **setting})


# ====================================================================== workflow


def test_nested_workflows_forward_files_down_and_up(project: Project) -> None:
    """a → outer → inner → deep, and deep's result back up through inner and outer to z."""
    a = sharin.add_task(project, "a", LOG + "echo seed > seed.txt", outputs=["seed.txt"])
    outer = sharin.add_component(project, "workflow", "outer", env={"LEVEL": "outer"})
    inner = sharin.add_component(project, "workflow", "inner", parent=outer)
    deep = sharin.add_task(
        project,
        "deep",
        LOG + '{ cat in.txt; echo "$LEVEL"; } | tr a-z A-Z > result.txt',
        parent=inner,
    )
    z = sharin.add_task(project, "z", LOG + "cat final.txt > got")
    sharin.connect_files(project, a, "seed.txt", outer, "outer_in")
    sharin.connect_files(project, outer, "outer_in", inner, "inner_in")
    sharin.connect_files(project, inner, "inner_in", deep, "in.txt")
    sharin.connect_files(project, deep, "result.txt", inner, "inner_out")
    sharin.connect_files(project, inner, "inner_out", outer, "outer_out")
    sharin.connect_files(project, outer, "outer_out", z, "final.txt")
    assert sharin.validate(project) == []

    result = run_ok(project)

    assert ran(project) == ["a", "outer/inner/deep", "z"]
    assert (project.root / "z" / "got").read_text() == "SEED\nOUTER\n"
    assert (project.root / "outer" / "inner" / "deep" / "in.txt").read_text() == "seed\n"
    # delivered as links all the way: nothing is copied between workflow levels
    assert (project.root / "outer" / "inner" / "deep" / "in.txt").is_symlink()
    assert (project.root / "z" / "final.txt").resolve() == (
        project.root / "outer" / "inner" / "deep" / "result.txt"
    )
    assert states(project, result.run) == {
        "a": "finished",
        "outer": "finished",
        "outer/inner": "finished",
        "outer/inner/deep": "finished",
        "z": "finished",
    }
    assert cmp_json(project, "outer/inner")["state"] == "finished"


def test_a_failure_inside_a_workflow_fails_it_and_stops_its_successors(project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    sharin.add_task(project, "bad", LOG + "exit 2", parent=wf)
    after = sharin.add_task(project, "after", LOG)
    sharin.connect(project, wf, after)
    result = sharin.run(project.root)
    assert result.state == "failed"
    assert ran(project) == ["wf/bad"]
    assert states(project, result.run) == {"wf": "failed", "wf/bad": "failed"}
    assert cmp_json(project, "wf")["state"] == "failed"


# ====================================================================== if


def if_diamond(p: Project, condition: str, **if_props: Any) -> None:
    """a → if; if ─next→ yes → yes2 → join; if ─else→ no → join; a's flag.txt → if."""
    a = sharin.add_task(p, "a", LOG + "cat ../answer > flag.txt", outputs=["flag.txt"])
    cond = sharin.add_component(p, "if", "cond", condition=condition, **if_props)
    yes = sharin.add_task(p, "yes", LOG)
    yes2 = sharin.add_task(p, "yes2", LOG)
    no = sharin.add_task(p, "no", LOG)
    join = sharin.add_task(p, "join", LOG)
    sharin.connect(p, a, cond)
    sharin.connect_files(p, a, "flag.txt", cond, "flag.txt")
    sharin.connect(p, cond, yes)
    sharin.connect(p, yes, yes2)
    sharin.connect(p, cond, no, else_=True)
    sharin.connect(p, yes2, join)
    sharin.connect(p, no, join)


@pytest.mark.parametrize(("answer", "taken"), [("yes", "next"), ("no", "else")])
def test_if_with_a_script_condition(project: Project, answer: str, taken: str) -> None:
    if_diamond(project, "check.sh")
    (project.root / "answer").write_text(answer + "\n")
    script = project.root / "cond" / "check.sh"
    # the script reads the file the if received; it is made executable by the engine
    script.write_text('#!/bin/sh\necho "$PWD" > where\ngrep -qx yes flag.txt\n')
    assert sharin.validate(project) == []

    result, events = run_with_events(project)

    assert result.ok, result.failed
    branch = ["yes", "yes2"] if taken == "next" else ["no"]
    assert ran(project) == ["a", *branch, "join"]  # join is downstream of both branches
    skipped = {"yes", "yes2", "no"} - set(branch)
    assert {e.key for e in events if e.state == "skipped"} == skipped
    tasks = journal_tasks(project.root, result.run)
    assert not skipped & set(tasks)
    assert (tasks["cond"].state, tasks["cond"].message) == ("finished", taken)
    assert (project.root / "cond" / "where").read_text().strip() == str(project.root / "cond")
    assert cmp_json(project, "cond")["state"] == "finished"
    for name in skipped:
        assert cmp_json(project, name)["state"] == "not-started"


@pytest.mark.parametrize(
    ("env", "taken"),
    [({"LEVEL": "3", "MODE": "fast"}, "yes"), ({"LEVEL": "1", "MODE": "fast"}, "no")],
)
def test_if_with_an_expression_condition(project: Project, env: dict[str, str], taken: str) -> None:
    sharin.set_property(project, "/", "env", {"MODE": env.pop("MODE")})  # inherited
    if_diamond(project, 'Number(LEVEL) > 2 && MODE === "fast"', env=env)
    (project.root / "answer").write_text("ignored\n")
    result = run_ok(project)
    assert ran(project) == ["a", *(["yes", "yes2"] if taken == "yes" else ["no"]), "join"]
    assert journal_tasks(project.root, result.run)["cond"].message == (
        "next" if taken == "yes" else "else"
    )


def test_a_branch_not_taken_stays_skipped_despite_a_file_edge_from_upstream(
    project: Project,
) -> None:
    """WHEEL starts a component behind an if only through the if: a file edge from a task
    before the if does not start the branch the if did not take."""
    a = sharin.add_task(project, "a", LOG + "echo data > data.txt", outputs=["data.txt"])
    cond = sharin.add_component(project, "if", "cond", condition="false")
    yes = sharin.add_task(project, "yes", LOG + "cat in.txt")
    no = sharin.add_task(project, "no", LOG + "cat in.txt > got")
    sharin.connect(project, a, cond)
    sharin.connect(project, cond, yes)
    sharin.connect(project, cond, no, else_=True)
    sharin.connect_files(project, a, "data.txt", yes, "in.txt")
    sharin.connect_files(project, a, "data.txt", no, "in.txt")
    after_yes = sharin.add_task(project, "after_yes", LOG)
    sharin.connect(project, yes, after_yes)

    result = run_ok(project)

    assert ran(project) == ["a", "no"]
    assert (project.root / "no" / "got").read_text() == "data\n"
    assert set(journal_tasks(project.root, result.run)) == {"a", "cond", "no"}


def test_an_if_whose_condition_cannot_be_evaluated_fails(project: Project) -> None:
    cond = sharin.add_component(project, "if", "cond", condition='UNSET_VARIABLE == "1"')
    yes = sharin.add_task(project, "yes", LOG)
    no = sharin.add_task(project, "no", LOG)
    sharin.connect(project, cond, yes)
    sharin.connect(project, cond, no, else_=True)
    result = sharin.run(project.root)
    assert result.state == "failed"
    assert ran(project) == []
    [failure] = result.failed
    assert failure.startswith("cond: condition:") and "UNSET_VARIABLE" in failure
    assert cmp_json(project, "cond")["state"] == "failed"


# ====================================================================== for


@pytest.mark.parametrize(
    ("start", "end", "step", "indices", "dirs"),
    [
        (1, 5, 2, ["1", "3", "5"], ["loop_1", "loop_3", "loop_5"]),
        (2, 0, -1, ["2", "1", "0"], ["loop_2", "loop_1", "loop_0"]),
        (0, 1, 0.5, ["0", "0.5", "1"], ["loop_0", "loop_0_5", "loop_1"]),
    ],
    ids=["up", "down", "fractional"],
)
def test_for_loop(
    project: Project,
    start: float,
    end: float,
    step: float,
    indices: list[str],
    dirs: list[str],
) -> None:
    seed = sharin.add_task(project, "seed", LOG + "echo seed > seed.txt", outputs=["seed.txt"])
    loop = sharin.add_component(project, "for", "loop", start=start, end=end, step=step)
    body = sharin.add_task(
        project,
        "step",
        LOG
        + WHEEL_ENV
        + '[ -e hist.txt ] || cp seed.txt hist.txt\necho "$WHEEL_CURRENT_INDEX" >> hist.txt',
        parent=loop,
    )
    after = sharin.add_task(project, "after", LOG + "cat final.txt > got")
    sharin.connect_files(project, seed, "seed.txt", loop, "seed.txt")
    sharin.connect_files(project, loop, "seed.txt", body, "seed.txt")
    sharin.connect_files(project, body, "hist.txt", loop, "hist.txt")
    sharin.connect_files(project, loop, "hist.txt", after, "final.txt")
    assert sharin.validate(project) == []

    result = run_ok(project)

    root = project.root
    assert ran(project) == ["seed", *(f"{d}/step" for d in dirs), "after"]
    history = "seed\n" + "".join(f"{i}\n" for i in indices)
    # each trip starts from a copy of the previous one, so the history grows trip by trip
    assert (root / dirs[-1] / "step" / "hist.txt").read_text() == history
    assert (root / dirs[0] / "step" / "hist.txt").read_text() == f"seed\n{indices[0]}\n"
    # the last trip is copied back into the loop's directory; after reads it through the edge
    assert (root / "loop" / "step" / "hist.txt").read_text() == history
    assert (root / "after" / "got").read_text() == history
    for pos, (index, d) in enumerate(zip(indices, dirs, strict=True)):
        assert env_file(root / d / "step" / "env.txt") == {
            "WHEEL_CURRENT_INDEX": index,
            "WHEEL_PREV_INDEX": indices[pos - 1] if pos else "",
            "WHEEL_NEXT_INDEX": indices[pos + 1] if pos + 1 < len(indices) else "",
            "WHEEL_FOR_START": str(start),
            "WHEEL_FOR_END": str(end),
            "WHEEL_FOR_STEP": str(step),
            "WHEEL_LOOP_LEN": str(len(indices)),
        }
        instance = read_json(root / d / "cmp.wheel.json")
        assert instance["subComponent"] is True and instance["type"] == "for"
    assert sorted(p.name for p in root.glob("loop_*")) == sorted(dirs)
    assert model_components(project) == ["after", "loop", "loop/step", "seed"]
    tasks = journal_tasks(root, result.run)
    assert [tasks[d].state for d in dirs] == ["finished"] * len(dirs)
    assert (tasks["loop"].state, tasks["loop"].message) == ("finished", f"{len(dirs)} trips")
    assert cmp_json(project, "loop")["state"] == "finished"
    assert cmp_json(project, "loop/step")["state"] == "not-started"  # the template never ran


def test_a_failing_trip_ends_the_loop_and_fails_it(project: Project) -> None:
    loop = sharin.add_component(project, "for", "loop", start=0, end=5, step=1)
    sharin.add_task(project, "t", LOG + '[ "$WHEEL_CURRENT_INDEX" != 2 ]', parent=loop)
    after = sharin.add_task(project, "after", LOG)
    sharin.connect(project, loop, after)
    result = sharin.run(project.root, options=RunOptions(keep_going=True))
    assert result.state == "failed"
    assert ran(project) == ["loop_0/t", "loop_1/t", "loop_2/t"]
    tasks = journal_tasks(project.root, result.run)
    assert (tasks["loop_2"].state, tasks["loop"].state) == ("failed", "failed")
    assert not (project.root / "loop_3").exists()
    assert "after" not in tasks


# ====================================================================== while


@pytest.mark.parametrize("kind", ["expression", "script"])
def test_while_loop(project: Project, kind: str) -> None:
    limit = sharin.add_task(project, "limit", LOG + "echo 3 > limit.txt", outputs=["limit.txt"])
    condition = "Number(WHEEL_CURRENT_INDEX) < 3" if kind == "expression" else "more.sh"
    loop = sharin.add_component(project, "while", "loop", condition=condition)
    if kind == "script":
        # evaluated in the while's own directory, where its inputs are delivered
        (loop.directory / "more.sh").write_text(
            '#!/bin/sh\necho "$WHEEL_CURRENT_INDEX $PWD" >> ../cond.log\n'
            '[ "$WHEEL_CURRENT_INDEX" -lt "$(cat limit.txt)" ]\n'
        )
    body = sharin.add_task(
        project, "body", LOG + WHEEL_ENV + 'echo "$WHEEL_CURRENT_INDEX" >> hist.txt', parent=loop
    )
    after = sharin.add_task(project, "after", LOG + "cat in.txt > got")
    sharin.connect_files(project, limit, "limit.txt", loop, "limit.txt")
    sharin.connect_files(project, body, "hist.txt", loop, "hist.txt")
    sharin.connect_files(project, loop, "hist.txt", after, "in.txt")
    assert sharin.validate(project) == []

    result = run_ok(project)

    root = project.root
    assert ran(project) == ["limit", "loop_0/body", "loop_1/body", "loop_2/body", "after"]
    assert sorted(p.name for p in root.glob("loop_*")) == ["loop_0", "loop_1", "loop_2"]
    assert (root / "after" / "got").read_text() == "0\n1\n2\n"
    assert env_file(root / "loop_1" / "body" / "env.txt") == {
        "WHEEL_CURRENT_INDEX": "1",
        "WHEEL_PREV_INDEX": "0",
        "WHEEL_NEXT_INDEX": "2",
    }
    assert env_file(root / "loop_0" / "body" / "env.txt")["WHEEL_PREV_INDEX"] == ""
    if kind == "script":
        evaluated = (root / "cond.log").read_text().splitlines()
        assert evaluated == [f"{i} {root / 'loop'}" for i in range(4)]
    assert journal_tasks(root, result.run)["loop"].message == "3 trips"


def test_a_while_whose_condition_is_false_at_once_runs_no_trip(project: Project) -> None:
    loop = sharin.add_component(project, "while", "loop", condition="false")
    sharin.add_task(project, "body", LOG, parent=loop)
    after = sharin.add_task(project, "after", LOG)
    sharin.connect(project, loop, after)
    run_ok(project)
    assert ran(project) == ["after"]
    assert list(project.root.glob("loop_*")) == []


# ====================================================================== foreach


def test_foreach_loop(project: Project) -> None:
    seed = sharin.add_task(project, "seed", LOG + "echo base > base.txt", outputs=["base.txt"])
    loop = sharin.add_component(project, "foreach", "each", indexList=["alpha", "beta", 7, "x/y"])
    body = sharin.add_task(
        project,
        "body",
        LOG + WHEEL_ENV + '{ cat base.txt; echo "$WHEEL_CURRENT_INDEX"; } > out.txt',
        parent=loop,
    )
    after = sharin.add_task(project, "after", LOG + "cat in.txt > got")
    sharin.connect_files(project, seed, "base.txt", loop, "base.txt")
    sharin.connect_files(project, loop, "base.txt", body, "base.txt")
    sharin.connect_files(project, body, "out.txt", loop, "out.txt")
    sharin.connect_files(project, loop, "out.txt", after, "in.txt")
    assert sharin.validate(project) == []

    run_ok(project)

    root = project.root
    dirs = ["each_alpha", "each_beta", "each_7", "each_x_y"]  # the index is sanitized
    assert ran(project) == ["seed", *(f"{d}/body" for d in dirs), "after"]
    assert (root / "each_beta" / "body" / "out.txt").read_text() == "base\nbeta\n"
    assert env_file(root / "each_beta" / "body" / "env.txt") == {
        "WHEEL_CURRENT_INDEX": "beta",
        "WHEEL_PREV_INDEX": "alpha",
        "WHEEL_NEXT_INDEX": "7",
        "WHEEL_LOOP_LEN": "4",
        "WHEEL_FOREACH_LEN": "4",
    }
    assert (root / "after" / "got").read_text() == "base\nx/y\n"


# ====================================================================== break / continue


def test_break_ends_a_while_loop(project: Project) -> None:
    loop = sharin.add_component(project, "while", "loop", condition="true")
    work = sharin.add_task(
        project, "work", LOG + 'echo "$WHEEL_CURRENT_INDEX" >> hist.txt', parent=loop
    )
    brk = sharin.add_component(
        project, "break", "brk", parent=loop, condition='WHEEL_CURRENT_INDEX === "2"'
    )
    tail = sharin.add_task(project, "tail", LOG, parent=loop)
    sharin.connect(project, work, brk)
    sharin.connect(project, brk, tail)
    after = sharin.add_task(project, "after", LOG + "cat in.txt > got")
    sharin.connect_files(project, work, "hist.txt", loop, "hist.txt")
    sharin.connect_files(project, loop, "hist.txt", after, "in.txt")

    result = run_ok(project)

    assert ran(project) == [
        "loop_0/work",
        "loop_0/tail",
        "loop_1/work",
        "loop_1/tail",
        "loop_2/work",  # break: tail does not run, and no trip follows
        "after",
    ]
    assert sorted(p.name for p in project.root.glob("loop_*")) == ["loop_0", "loop_1", "loop_2"]
    assert (project.root / "after" / "got").read_text() == "0\n1\n2\n"
    tasks = journal_tasks(project.root, result.run)
    assert (tasks["loop_2"].state, tasks["loop_2"].message) == ("finished", "break")
    assert tasks["loop_2/brk"].message == "break"
    assert tasks["loop_1/brk"].message is None
    assert tasks["loop"].state == "finished"


def test_continue_skips_the_rest_of_a_for_trip(project: Project) -> None:
    loop = sharin.add_component(project, "for", "loop", start=0, end=3, step=1)
    first = sharin.add_task(project, "first", LOG, parent=loop)
    cont = sharin.add_component(
        project,
        "continue",
        "skip_odd",
        parent=loop,
        condition="Number(WHEEL_CURRENT_INDEX) % 2 === 1",
    )
    second = sharin.add_task(
        project, "second", LOG + 'echo "$WHEEL_CURRENT_INDEX" > out.txt', parent=loop
    )
    sharin.connect(project, first, cont)
    sharin.connect(project, cont, second)
    after = sharin.add_task(project, "after", LOG + "cat in.txt > got")
    sharin.connect_files(project, second, "out.txt", loop, "out.txt")
    sharin.connect_files(project, loop, "out.txt", after, "in.txt")

    result = run_ok(project)

    assert ran(project) == [
        "loop_0/first",
        "loop_0/second",
        "loop_1/first",
        "loop_2/first",
        "loop_2/second",
        "loop_3/first",
        "after",
    ]
    # trip 3 skipped second, so its copy (from trip 2) holds trip 2's output
    assert (project.root / "after" / "got").read_text() == "2\n"
    tasks = journal_tasks(project.root, result.run)
    assert all(tasks[f"loop_{i}"].state == "finished" for i in range(4))
    assert tasks["loop_3"].message is None  # continue, not break
    assert tasks["loop"].message == "4 trips"


# ====================================================================== parameter study


def test_parameter_study_range_and_files_axes_scatter_and_gather(project: Project) -> None:
    prep = sharin.add_task(
        project, "prep", LOG + "echo common > common.dat", outputs=["common.dat"]
    )
    ps = sharin.add_component(project, "parameterStudy", "ps")
    calc = sharin.add_task(
        project,
        "calc",
        LOG
        + "{ cat input.txt; cat common_$WHEEL_PS_PARAM_N.dat;"
        + ' echo "N=$WHEEL_PS_PARAM_N DATA=$WHEEL_PS_PARAM_DATA";'
        + " cat ../$WHEEL_PS_PARAM_DATA; ls .. | grep -c data_; } > result.txt",
        parent=ps,
    )
    (calc.directory / "input.txt").write_text("n={{ N }} data={{ DATA }}\n")
    (ps.directory / "header.txt").write_text("N is {{ N }}\n")
    for name in ("data_1.csv", "data_2.csv", "other.csv"):
        (ps.directory / name).write_text(name + "\n")
    parameter_file(
        ps,
        {
            "targetFiles": ["header.txt", {"targetNode": calc.id, "targetName": "input.txt"}],
            "params": [
                {"keyword": "N", "min": 1, "max": 2, "step": 1},
                {"keyword": "DATA", "files": ["data_*.csv"]},
            ],
            "scatter": [
                {"srcName": "common.dat", "dstNode": calc.id, "dstName": "common_{{ N }}.dat"}
            ],
            "gather": [
                {
                    "srcName": "result.txt",
                    "srcNode": calc.id,
                    "dstName": "results/{{ N }}_{{ DATA }}",
                }
            ],
        },
    )
    collect = sharin.add_task(project, "collect", LOG + "ls results > names; cat results/* > all")
    sharin.connect_files(project, prep, "common.dat", ps, "common.dat")
    sharin.connect_files(project, ps, "results", collect, "results")
    assert sharin.validate(project) == []

    result = run_ok(project)

    root = project.root
    names = [
        "ps_N_1_DATA_data_1_csv",
        "ps_N_2_DATA_data_1_csv",
        "ps_N_1_DATA_data_2_csv",
        "ps_N_2_DATA_data_2_csv",
    ]
    assert sorted(p.name for p in root.glob("ps_*")) == sorted(names)
    assert sorted(ran(project)) == sorted(["prep", "collect", *(f"{n}/calc" for n in names)])
    assert ran(project)[0] == "prep" and ran(project)[-1] == "collect"
    inst = root / "ps_N_2_DATA_data_1_csv"
    assert (inst / "calc" / "result.txt").read_text() == (
        "n=2 data=data_1.csv\ncommon\nN=2 DATA=data_1.csv\ndata_1.csv\n1\n"
    )
    assert (inst / "header.txt").read_text() == "N is 2\n"
    # only its own files-axis file, no parameter file; the scatter source is not copied as is
    assert sorted(p.name for p in inst.iterdir()) == [
        "calc",
        "cmp.wheel.json",
        "data_1.csv",
        "header.txt",
        "other.csv",  # not a files-axis match: an ordinary file of the template
    ]
    assert read_json(inst / "cmp.wheel.json")["subComponent"] is True
    # the templates themselves are untouched
    assert (calc.directory / "input.txt").read_text() == "n={{ N }} data={{ DATA }}\n"
    # gathered into the study's directory, handed on through the output edge
    gathered = sorted(p.name for p in (root / "ps" / "results").iterdir())
    assert gathered == ["1_data_1.csv", "1_data_2.csv", "2_data_1.csv", "2_data_2.csv"]
    assert (root / "collect" / "names").read_text().split() == gathered
    assert (root / "collect" / "all").read_text().count("common\n") == 4
    data = cmp_json(project, "ps")
    assert (data["state"], data["numTotal"], data["numFinished"], data["numFailed"]) == (
        "finished",
        4,
        4,
        0,
    )
    tasks = journal_tasks(root, result.run)
    assert all(tasks[n].state == "finished" for n in names)
    assert tasks["ps"].message == "4 of 4 instances finished"
    assert model_components(project) == ["collect", "prep", "ps", "ps/calc"]


def test_parameter_values_are_rendered_without_html_escaping(project: Project) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    t = sharin.add_task(project, "t", LOG + "cat in.txt > out.txt", parent=ps)
    (t.directory / "in.txt").write_text(
        'op={{ OP }} up={{ OP | upper }} {{ "lt" if OP == "a<b" else "other" }}\n'
    )
    parameter_file(
        ps,
        {
            "targetFiles": [{"targetNode": t.id, "targetName": "in.txt"}],
            "params": [{"keyword": "OP", "list": ["a<b", "x&y\"'z"]}],
        },
    )
    run_ok(project)
    root = project.root
    assert (root / "ps_OP_a<b" / "t" / "out.txt").read_text() == "op=a<b up=A<B lt\n"
    assert (root / "ps_OP_x&y\"'z" / "t" / "out.txt").read_text() == (
        "op=x&y\"'z up=X&Y\"'Z other\n"
    )


def test_instance_names_are_sanitized_as_wheel_does(project: Project) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    sharin.add_task(
        project, "t", LOG + 'echo "$WHEEL_PS_PARAM_X $WHEEL_PS_PARAM_P" > out.txt', parent=ps
    )
    parameter_file(
        ps,
        {
            "targetFiles": [],
            "params": [
                {"keyword": "X", "min": 0.5, "max": 1.5, "step": 0.5},
                {"keyword": "P", "list": ["a/b", "c.d"]},
            ],
        },
    )
    run_ok(project)
    root = project.root
    assert sorted(p.name for p in root.glob("ps_*")) == sorted(
        # an integral value is written without decimals, as WHEEL's getNthValue does
        f"ps_X_{x}_P_{p}"
        for x in ("0_5", "1", "1_5")
        for p in ("a_b", "c_d")
    )
    assert (root / "ps_X_1_P_c_d" / "t" / "out.txt").read_text() == "1 c.d\n"
    assert (root / "ps_X_1_5_P_a_b" / "t" / "out.txt").read_text() == "1.5 a/b\n"


def test_delete_loop_instance_removes_instances_after_gathering(project: Project) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps", deleteLoopInstance=True)
    t = sharin.add_task(project, "t", LOG + 'echo "$WHEEL_PS_PARAM_K" > out.txt', parent=ps)
    parameter_file(
        ps,
        {
            "targetFiles": [],
            "params": [{"keyword": "K", "list": ["a", "b"]}],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "out_{{ K }}.txt"}],
        },
    )
    run_ok(project)
    assert sorted(ran(project)) == ["ps_K_a/t", "ps_K_b/t"]
    assert list(project.root.glob("ps_*")) == []
    assert (project.root / "ps" / "out_a.txt").read_text() == "a\n"
    assert (project.root / "ps" / "out_b.txt").read_text() == "b\n"


@pytest.mark.parametrize("keep_going", [True, False], ids=["keep-going", "stop"])
def test_a_failing_instance_fails_the_parameter_study(project: Project, keep_going: bool) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    sharin.add_task(project, "t", LOG + '[ "$WHEEL_PS_PARAM_K" != 2 ]', parent=ps)
    parameter_file(ps, {"targetFiles": [], "params": [{"keyword": "K", "list": [1, 2, 3]}]})
    after = sharin.add_task(project, "after", LOG)
    sharin.connect(project, ps, after)

    result = sharin.run(project.root, options=RunOptions(keep_going=keep_going, max_local=1))

    assert result.state == "failed"
    assert "after" not in ran(project)
    tasks = journal_tasks(project.root, result.run)
    assert (tasks["ps_K_2"].state, tasks["ps_K_2/t"].state, tasks["ps"].state) == (
        "failed",
        "failed",
        "failed",
    )
    assert "ps_K_2/t: exit code 1" in result.failed
    data = cmp_json(project, "ps")
    assert data["state"] == "failed" and data["numTotal"] == 3
    assert data["numFailed"] == 1
    if keep_going:
        assert sorted(ran(project)) == ["ps_K_1/t", "ps_K_2/t", "ps_K_3/t"]
        assert data["numFinished"] == 2
        assert tasks["ps"].message == "2 of 3 instances finished"


# ====================================================================== source / viewer / storage


@pytest.mark.parametrize(
    ("files", "used"),
    [(["cube.msh"], "cube.msh"), (["mesh", "other.msh"], "mesh")],
    ids=["single-file", "named-as-output"],
)
def test_source_hands_on_its_file(project: Project, files: list[str], used: str) -> None:
    src = sharin.add_component(project, "source", "src", outputFiles=[{"name": "mesh", "dst": []}])
    for name in files:
        (src.directory / name).write_text(f"content of {name}\n")
    use = sharin.add_task(project, "use", LOG + "cat in.msh > got")
    sharin.connect_files(project, src, "mesh", use, "in.msh")
    assert sharin.validate(project) == []

    result = run_ok(project)

    assert ran(project) == ["use"]
    assert (project.root / "use" / "got").read_text() == f"content of {used}\n"
    assert (project.root / "use" / "in.msh").resolve() == (src.directory / used).resolve()
    assert states(project, result.run) == {"src": "finished", "use": "finished"}


def test_a_source_with_several_files_and_none_named_as_its_output_fails(
    project: Project,
) -> None:
    src = sharin.add_component(project, "source", "src", outputFiles=[{"name": "mesh", "dst": []}])
    (src.directory / "a.msh").write_text("a")
    (src.directory / "b.msh").write_text("b")
    use = sharin.add_task(project, "use", LOG)
    sharin.connect_files(project, src, "mesh", use, "in.msh")
    result = sharin.run(project.root)
    assert result.state == "failed"
    assert ran(project) == []
    [failure] = result.failed
    assert "2 files (a.msh, b.msh)" in failure and "'mesh'" in failure


def test_viewer_receives_images_and_counts_them(project: Project) -> None:
    plot = sharin.add_task(
        project,
        "plot",
        LOG + "mkdir -p figs; echo png > figs/a.png; echo svg > figs/b.SVG; echo txt > notes.txt",
    )
    view = sharin.add_component(project, "viewer", "view")
    sharin.connect_files(project, plot, "figs/*", view, "images/")
    sharin.connect_files(project, plot, "notes.txt", view, "notes.txt")
    assert sharin.validate(project) == []

    result, events = run_with_events(project)

    assert result.ok, result.failed
    vdir = project.root / "view"
    assert (vdir / "images" / "figs" / "a.png").read_text() == "png\n"
    assert (vdir / "images" / "figs" / "b.SVG").is_symlink()
    assert (vdir / "notes.txt").is_symlink()
    [done] = [e for e in events if e.key == "view" and e.state == "finished"]
    assert done.message == "2 images"
    assert journal_tasks(project.root, result.run)["view"].message == "2 images"


def test_storage_keeps_copies_outside_the_project(tmp_path: Path) -> None:
    store_dir = tmp_path / "storage" / "results"
    p = Project.create(tmp_path / "first", git=False)
    make = sharin.add_task(
        p,
        "make",
        LOG + "echo 42 > result.dat; mkdir -p fields; echo u > fields/u; echo v > fields/v",
        outputs=["result.dat", "fields"],
    )
    store = sharin.add_component(p, "storage", "store", storagePath=str(store_dir))
    check = sharin.add_task(p, "check", LOG + "cat copy.dat > got; echo changed >> copy.dat")
    sharin.connect_files(p, make, "result.dat", store, "result.dat")
    sharin.connect_files(p, make, "fields", store, "fields")
    sharin.connect_files(p, store, "result.dat", check, "copy.dat")
    assert sharin.validate(p) == []

    result = run_ok(p)

    assert ran(p) == ["make", "check"]
    assert (store_dir / "result.dat").read_text() == "42\n"
    assert not (store_dir / "result.dat").is_symlink()
    assert sorted(os.listdir(store_dir / "fields")) == ["u", "v"]
    assert not (store_dir / "fields").is_symlink()
    # the links it received are gone from the component directory
    assert not (store.directory / "result.dat").exists()
    assert not (store.directory / "fields").exists()
    # the consumer got a copy, not a link into the storage
    copy = p.root / "check" / "copy.dat"
    assert not copy.is_symlink() and (p.root / "check" / "got").read_text() == "42\n"
    assert (store_dir / "result.dat").read_text() == "42\n"
    assert states(p, result.run)["store"] == "finished"

    # a later project reads from the same storage: it is a source of copies
    later = Project.create(tmp_path / "later", git=False)
    archive = sharin.add_component(later, "storage", "archive", storagePath=str(store_dir))
    use = sharin.add_task(later, "use", LOG + "cat in.dat fields/u > got; echo x >> in.dat")
    sharin.connect_files(later, archive, "result.dat", use, "in.dat")
    sharin.connect_files(later, archive, "fields", use, "fields")
    assert sharin.validate(later) == []
    run_ok(later)
    assert (later.root / "use" / "got").read_text() == "42\nu\n"
    assert not (later.root / "use" / "fields").is_symlink()
    assert (store_dir / "result.dat").read_text() == "42\n"  # the stored file is untouched


# ====================================================================== nested


def test_parameter_study_inside_a_for_loop(project: Project) -> None:
    loop = sharin.add_component(project, "for", "loop", start=1, end=2, step=1)
    ps = sharin.add_component(project, "parameterStudy", "ps", parent=loop)
    t = sharin.add_task(
        project,
        "t",
        LOG + 'echo "$WHEEL_CURRENT_INDEX-$WHEEL_PS_PARAM_K" > out.txt; cat in.txt >> out.txt',
        parent=ps,
    )
    (t.directory / "in.txt").write_text("k={{ K }}\n")
    parameter_file(
        ps,
        {
            "targetFiles": [{"targetNode": t.id, "targetName": "in.txt"}],
            "params": [{"keyword": "K", "list": ["x", "y"]}],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "all/{{ K }}.txt"}],
        },
    )
    sharin.connect_files(project, ps, "all", loop, "all")
    after = sharin.add_task(project, "after", LOG + "cat res/x.txt res/y.txt > got")
    sharin.connect_files(project, loop, "all", after, "res")
    assert sharin.validate(project) == []

    result = run_ok(project)

    root = project.root
    assert sorted(ran(project)) == sorted(
        [f"loop_{i}/ps_K_{k}/t" for i in (1, 2) for k in ("x", "y")] + ["after"]
    )
    assert (root / "loop_1" / "ps_K_y" / "t" / "out.txt").read_text() == "1-y\nk=y\n"
    assert (root / "loop_2" / "ps_K_x" / "t" / "out.txt").read_text() == "2-x\nk=x\n"
    assert (root / "after" / "got").read_text() == "2-x\nk=x\n2-y\nk=y\n"
    tasks = journal_tasks(root, result.run)
    assert all(tasks[f"loop_{i}/ps"].state == "finished" for i in (1, 2))


def test_break_inside_a_while_nested_in_a_for_ends_only_the_while(project: Project) -> None:
    outer = sharin.add_component(project, "for", "outer", start=0, end=1, step=1)
    inner = sharin.add_component(project, "while", "inner", parent=outer, condition="true")
    work = sharin.add_task(project, "work", LOG, parent=inner)
    brk = sharin.add_component(
        project, "break", "brk", parent=inner, condition='WHEEL_CURRENT_INDEX === "1"'
    )
    sharin.connect(project, work, brk)
    after = sharin.add_task(project, "after", LOG, parent=outer)
    sharin.connect(project, inner, after)

    run_ok(project)

    assert ran(project) == [
        "outer_0/inner_0/work",
        "outer_0/inner_1/work",
        "outer_0/after",
        "outer_1/inner_0/work",
        "outer_1/inner_1/work",
        "outer_1/after",
    ]


def test_if_inside_a_parameter_study(project: Project) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    cond = sharin.add_component(
        project, "if", "even", parent=ps, condition="Number(WHEEL_PS_PARAM_N) % 2 === 0"
    )
    yes = sharin.add_task(project, "yes", LOG + "echo even > kind", parent=ps)
    no = sharin.add_task(project, "no", LOG + "echo odd > kind", parent=ps)
    sharin.connect(project, cond, yes)
    sharin.connect(project, cond, no, else_=True)
    parameter_file(
        ps, {"targetFiles": [], "params": [{"keyword": "N", "min": 1, "max": 4, "step": 1}]}
    )

    result = run_ok(project)

    assert sorted(ran(project)) == ["ps_N_1/no", "ps_N_2/yes", "ps_N_3/no", "ps_N_4/yes"]
    tasks = journal_tasks(project.root, result.run)
    assert [tasks[f"ps_N_{n}/even"].message for n in range(1, 5)] == [
        "else",
        "next",
        "else",
        "next",
    ]
    assert (project.root / "ps_N_3" / "no" / "kind").read_text() == "odd\n"


# ====================================================================== keep


@pytest.mark.parametrize(
    ("keep", "left"),
    [(None, ["loop_0", "loop_1", "loop_2", "loop_3"]), (2, ["loop_2", "loop_3"]), (0, [])],
)
def test_keep_prunes_old_trips(project: Project, keep: int | None, left: list[str]) -> None:
    loop = sharin.add_component(project, "for", "loop", start=0, end=3, step=1, keep=keep)
    sharin.add_task(project, "t", LOG + 'echo "$WHEEL_CURRENT_INDEX" >> hist.txt', parent=loop)
    run_ok(project)
    assert ran(project) == [f"loop_{i}/t" for i in range(4)]
    assert sorted(p.name for p in project.root.glob("loop_*")) == left
    # the loop's directory shows the last trip, whatever was pruned
    assert (project.root / "loop" / "t" / "hist.txt").read_text() == "0\n1\n2\n3\n"


def test_a_template_is_copied_while_its_state_file_is_being_written(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state mirror writes a loop's (or a study's) cmp.wheel.json through a
    temporary file and a rename while the engine copies that directory into an instance: the
    temporary file must neither break the copy nor end up in the instance."""
    started: set[Path] = set()
    real_write = write_json_atomic
    real_copytree = shutil.copytree

    def slow_write(path: Path, data: Any) -> None:  # a slow disk: the temp file lingers
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        os.close(fd)
        started.add(path.parent)
        time.sleep(0.1)
        os.unlink(tmp)
        real_write(path, data)

    def copytree(src: Path, dst: Path, *args: Any, **kwargs: Any) -> Path:
        if Path(src).name in ("loop", "ps"):  # copy a template only once its JSON is written
            deadline = time.monotonic() + 2
            while Path(src) not in started and time.monotonic() < deadline:
                time.sleep(0.002)
        return Path(real_copytree(src, dst, *args, **kwargs))

    monkeypatch.setattr(mirror_module, "write_json_atomic", slow_write)
    monkeypatch.setattr(shutil, "copytree", copytree)
    loop = sharin.add_component(project, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(project, "t", LOG, parent=loop)
    ps = sharin.add_component(project, "parameterStudy", "ps")
    sharin.add_task(project, "t", LOG, parent=ps)
    parameter_file(ps, {"targetFiles": [], "params": [{"keyword": "K", "list": ["a", "b"]}]})

    run_ok(project)

    assert sorted(ran(project)) == ["loop_0/t", "loop_1/t", "ps_K_a/t", "ps_K_b/t"]
    assert [str(x) for x in project.root.rglob(".tmp-*")] == []


# ====================================================================== validation


def _if(p: Project, condition: object) -> None:
    sharin.add_component(p, "if", "cond", condition=condition)


def _bad_parameter_file(text: str) -> Callable[[Project], None]:
    def build(p: Project) -> None:
        ps = sharin.add_component(p, "parameterStudy", "ps")
        sharin.add_task(p, "t", "true", parent=ps)
        (ps.directory / "parameterSetting.json").write_text(text)

    return build


def _break_outside(p: Project) -> None:
    wf = sharin.add_component(p, "workflow", "wf")
    sharin.add_component(p, "break", "brk", parent=wf, condition="true")


def _continue_in_ps(p: Project) -> None:
    ps = sharin.add_component(p, "parameterStudy", "ps")
    (ps.directory / "parameterSetting.json").write_text(
        '{"version": 2, "targetFiles": [], "params": [{"keyword": "K", "list": ["a"]}]}'
    )
    sharin.add_component(p, "continue", "cont", parent=ps, condition="true")


def _break_in_workflow_in_loop(p: Project) -> None:
    loop = sharin.add_component(p, "while", "loop", condition="false")
    wf = sharin.add_component(p, "workflow", "wf", parent=loop)
    sharin.add_component(p, "break", "brk", parent=wf, condition="true")


VALIDATION_CASES: list[tuple[str, Callable[[Project], object], str, str, str]] = [
    (
        "if-bad-expression",
        lambda p: _if(p, "WHEEL_CURRENT_INDEX = 3"),
        "cond/cmp.wheel.json",
        "condition",
        "WHEEL_CURRENT_INDEX = 3",
    ),
    (
        "if-missing-script",
        lambda p: _if(p, "check.sh"),
        "cond/cmp.wheel.json",
        "condition",
        "'check.sh': no such script",
    ),
    ("if-no-condition", lambda p: _if(p, None), "cond/cmp.wheel.json", "condition", "not set"),
    (
        "while-bad-expression",
        lambda p: sharin.add_component(p, "while", "w", condition="i++ < 3"),
        "w/cmp.wheel.json",
        "condition",
        "i++ < 3",
    ),
    (
        "for-step-0",
        lambda p: sharin.add_component(p, "for", "loop", start=0, end=3, step=0),
        "loop/cmp.wheel.json",
        "start/end/step",
        "step is 0",
    ),
    (
        "for-infinite",
        lambda p: sharin.add_component(p, "for", "loop", start=0, end=3, step=-1),
        "loop/cmp.wheel.json",
        "start/end/step",
        "infinite loop",
    ),
    (
        "for-unset",
        lambda p: sharin.add_component(p, "for", "loop"),
        "loop/cmp.wheel.json",
        "start/end/step",
        "must be a number",
    ),
    (
        "foreach-empty",
        lambda p: sharin.add_component(p, "foreach", "each", indexList=[]),
        "each/cmp.wheel.json",
        "indexList",
        "is empty",
    ),
    (
        "foreach-duplicate",
        lambda p: sharin.add_component(p, "foreach", "each", indexList=["a.b", "a_b"]),
        "each/cmp.wheel.json",
        "indexList",
        "same instance directory",
    ),
    (
        "keep-negative",
        lambda p: edit_json(  # as a hand edit: `add --set keep=-1` is refused at once
            sharin.add_component(p, "for", "loop", start=0, end=1, step=1).file,
            lambda d: d.update(keep=-1),
        ),
        "loop/cmp.wheel.json",
        "keep",
        "-1",
    ),
    (
        "break-outside-a-loop",
        _break_outside,
        "wf/brk/cmp.wheel.json",
        "type",
        "must sit directly inside",
    ),
    (
        "break-in-a-workflow-in-a-loop",
        _break_in_workflow_in_loop,
        "loop/wf/brk/cmp.wheel.json",
        "type",
        "must sit directly inside",
    ),
    (
        "continue-in-a-parameter-study",
        _continue_in_ps,
        "ps/cont/cmp.wheel.json",
        "type",
        "must sit directly inside",
    ),
    (
        "ps-malformed-json",
        _bad_parameter_file('{"version": 2, "params": [}'),
        "ps/cmp.wheel.json",
        "parameterFile",
        "parameterSetting.json: malformed JSON at line 1",
    ),
    (
        "ps-version-1",
        _bad_parameter_file('{"version": 1, "target_param": []}'),
        "ps/cmp.wheel.json",
        "parameterFile",
        "PS version 1",
    ),
    (
        "ps-bad-step",
        _bad_parameter_file(
            '{"version": 2, "params": [{"keyword": "N", "min": 1, "max": 3, "step": 0}]}'
        ),
        "ps/cmp.wheel.json",
        "parameterFile",
        "params[0]",
    ),
    (
        "ps-missing-file",
        lambda p: sharin.add_component(p, "parameterStudy", "ps", parameterFile="mine.json"),
        "ps/cmp.wheel.json",
        "parameterFile",
        "file not found",
    ),
    (
        "source-without-output-name",
        lambda p: sharin.add_component(p, "source", "src"),
        "src/cmp.wheel.json",
        "outputFiles",
        "exactly one output file with a name",
    ),
    (
        "storage-without-path",
        lambda p: sharin.add_component(p, "storage", "store"),
        "store/cmp.wheel.json",
        "storagePath",
        "is not set",
    ),
    (
        "storage-relative-path",
        lambda p: sharin.add_component(p, "storage", "store", storagePath="data/store"),
        "store/cmp.wheel.json",
        "storagePath",
        "must be an absolute path",
    ),
    (
        "hpciss",
        lambda p: sharin.add_component(p, "hpciss", "hpci", storagePath="/gfarm/x"),
        "hpci/cmp.wheel.json",
        "type",
        "hpciss (HPCI shared storage through Gfarm) is not supported by sharin",
    ),
    (
        "hpcisstar",
        lambda p: sharin.add_component(p, "hpcisstar", "hpcitar", storagePath="/gfarm/x"),
        "hpcitar/cmp.wheel.json",
        "type",
        "not supported",
    ),
]


@pytest.mark.parametrize(
    ("build", "file", "field", "fragment"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_bad_control_component_names_file_and_field(
    project: Project,
    build: Callable[[Project], object],
    file: str,
    field: str,
    fragment: str,
) -> None:
    build(project)
    problems = sharin.validate(project.root)
    hits = [x for x in problems if (x.file, x.field) == (file, field) and fragment in x.message]
    assert hits, f"no {file} [{field}] problem with {fragment!r} in {problems}"
    assert str(hits[0]).startswith(f"{file} [{field}]: ")
    with pytest.raises(sharin.ValidationError) as err:
        sharin.run(project.root)
    assert hits[0] in err.value.problems
    assert not (project.root / ".sharin" / "journal.sqlite").exists()  # refused before a run


def test_valid_control_components_give_no_problem(project: Project, tmp_path: Path) -> None:
    sharin.add_component(project, "if", "cond", condition='A == "1" || B != "x"')
    # a condition naming an existing script is fine even when it does not parse
    script_if = sharin.add_component(project, "if", "cond2", condition="check-2.sh")
    (script_if.directory / "check-2.sh").write_text("#!/bin/sh\ntrue\n")
    sharin.add_component(project, "for", "loop", start=3, end=1, step=-1, keep=0)
    loop = sharin.add_component(project, "foreach", "each", indexList=["a", 1, 2.5])
    sharin.add_component(project, "continue", "cont", parent=loop, condition="false")
    sharin.add_component(project, "while", "w", condition="Number(WHEEL_CURRENT_INDEX) < 2")
    sharin.add_component(project, "storage", "store", storagePath=str(tmp_path / "s"))
    sharin.add_component(project, "source", "src", outputFiles=[{"name": "x", "dst": []}])
    sharin.add_component(project, "viewer", "view")
    assert sharin.validate(project) == []
