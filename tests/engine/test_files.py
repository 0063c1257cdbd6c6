"""File edges with WHEEL's delivery rules, as units and in real runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import Delivery, deliver
from sharin.errors import RunError

from ..helpers import edit_json, journal_tasks, read_json

# ---------------------------------------------------------------------- deliver() as a unit


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "prj" / "src", tmp_path / "prj" / "dst"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    for name in ("a.dat", "b.dat", "c.txt", "sub/d.dat"):
        (src / name).write_text(name)
    return src, dst


def test_exact_name_is_renamed(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    made = deliver(Delivery("src", src, "c.txt", dst, "input.txt"))
    assert made == [dst / "input.txt"]
    assert os.readlink(dst / "input.txt") == "../src/c.txt"  # relative: the project can move
    assert (dst / "input.txt").read_text() == "c.txt"


def test_glob_goes_into_a_directory_keeping_names(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    made = deliver(Delivery("src", src, "*.dat", dst, "data"))
    assert made == [dst / "data" / "a.dat", dst / "data" / "b.dat"]
    assert sorted(os.listdir(dst / "data")) == ["a.dat", "b.dat"]
    assert os.readlink(dst / "data" / "a.dat") == "../../src/a.dat"


def test_glob_keeps_the_relative_path_of_matches(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    deliver(Delivery("src", src, "sub/*.dat", dst, "in"))
    assert (dst / "in" / "sub" / "d.dat").read_text() == "sub/d.dat"


@pytest.mark.parametrize("name", ["box/", "box\\"])
def test_trailing_separator_means_a_directory(dirs: tuple[Path, Path], name: str) -> None:
    src, dst = dirs
    deliver(Delivery("src", src, "c.txt", dst, name))
    assert (dst / "box" / "c.txt").is_symlink()


def test_empty_name_means_the_component_directory(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    deliver(Delivery("src", src, "c.txt", dst, ""))
    deliver(Delivery("src", src, "*.dat", dst, ""))
    assert sorted(os.listdir(dst)) == ["a.dat", "b.dat", "c.txt"]
    assert all((dst / n).is_symlink() for n in os.listdir(dst))


def test_a_directory_can_be_delivered(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    deliver(Delivery("src", src, "sub", dst, "folder"))
    assert (dst / "folder").is_symlink() and (dst / "folder" / "d.dat").is_file()


def test_delivery_replaces_what_is_there(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    (dst / "input.txt").write_text("old")
    (dst / "folder").mkdir()
    (dst / "folder" / "junk").write_text("old")
    deliver(Delivery("src", src, "c.txt", dst, "input.txt"))
    deliver(Delivery("src", src, "sub", dst, "folder"))
    assert (dst / "input.txt").read_text() == "c.txt"
    assert (dst / "folder").is_symlink() and not (dst / "folder" / "junk").exists()
    assert not [n for n in os.listdir(dst) if "sharin-tmp" in n]


def test_missing_named_file_is_an_error(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    with pytest.raises(RunError) as err:
        deliver(Delivery("a", src, "nothing.txt", dst, "in.txt"))
    msg = str(err.value)
    assert "input 'in.txt' of dst: a has no file 'nothing.txt'" in msg
    assert str(src) in msg


def test_a_glob_matching_nothing_delivers_nothing(dirs: tuple[Path, Path]) -> None:
    src, dst = dirs
    assert deliver(Delivery("a", src, "*.none", dst, "in")) == []
    assert os.listdir(dst) == []


# ---------------------------------------------------------------------- in runs


def producer_consumer(
    p: Project, make: str, out: str, in_: str, consume: str
) -> tuple[sharin.Component, sharin.Component]:
    a = sharin.add_task(p, "a", make)
    b = sharin.add_task(p, "b", consume)
    sharin.connect_files(p, a, out, b, in_)
    return a, b


def test_run_renames_an_exact_name(project: Project) -> None:
    producer_consumer(project, "echo hello > out.txt", "out.txt", "in.txt", "cat in.txt > got")
    assert sharin.run(project).ok
    link = project.root / "b" / "in.txt"
    assert link.is_symlink() and os.readlink(link) == "../a/out.txt"
    assert (project.root / "b" / "got").read_text() == "hello\n"


def test_run_delivers_a_glob_into_a_directory(project: Project) -> None:
    producer_consumer(
        project,
        "echo 1 > x.dat; echo 2 > y.dat; echo no > z.txt",
        "*.dat",
        "data",
        "cat data/*.dat > got; ls data > names",
    )
    assert sharin.run(project).ok
    b = project.root / "b"
    assert (b / "names").read_text().split() == ["x.dat", "y.dat"]
    assert (b / "got").read_text() == "1\n2\n"
    assert (b / "data" / "x.dat").is_symlink()


def test_run_delivers_into_a_directory_named_with_a_slash(project: Project) -> None:
    producer_consumer(project, "echo hi > out.txt", "out.txt", "inbox/", "cat inbox/out.txt > got")
    assert sharin.run(project).ok
    assert (project.root / "b" / "inbox" / "out.txt").is_symlink()
    assert (project.root / "b" / "got").read_text() == "hi\n"


def test_run_delivers_an_empty_name_into_the_component_root(project: Project) -> None:
    a, b = producer_consumer(project, "echo hi > out.txt", "out.txt", "in", "cat out.txt > got")
    # WHEEL writes an empty input name for "the component directory itself"
    edit_json(b.file, lambda d: d["inputFiles"][0].update(name=""))
    edit_json(a.file, lambda d: d["outputFiles"][0]["dst"][0].update(dstName=""))
    assert sharin.validate(project.root) == []
    assert sharin.run(project.root).ok
    assert (project.root / "b" / "out.txt").is_symlink()
    assert (project.root / "b" / "got").read_text() == "hi\n"


def test_several_outputs_into_one_directory(project: Project) -> None:
    a = sharin.add_task(project, "a", "echo a > a.txt")
    b = sharin.add_task(project, "b", "echo b > b.txt")
    c = sharin.add_task(project, "c", "cat all/a.txt all/b.txt > got")
    sharin.connect_files(project, a, "a.txt", c, "all/")
    sharin.connect_files(project, b, "b.txt", c, "all/")
    assert sharin.validate(project) == []
    assert sharin.run(project).ok
    assert (project.root / "c" / "got").read_text() == "a\nb\n"


def test_missing_source_file_fails_the_consumer_clearly(project: Project) -> None:
    producer_consumer(project, "echo forgot", "out.txt", "in.txt", "touch ran")
    result = sharin.run(project)
    assert result.state == "failed"
    assert result.counts == {"finished": 1, "failed": 1}
    [failure] = result.failed
    assert failure.startswith("b: input 'in.txt' of b: a has no file 'out.txt'")
    assert not (project.root / "b" / "ran").exists()  # the script never started
    record = journal_tasks(project.root, result.run)["b"]
    assert record.state == "failed" and "has no file 'out.txt'" in (record.message or "")
    assert read_json(project.root / "b" / "cmp.wheel.json")["state"] == "failed"


def test_a_file_edge_orders_the_consumer_after_the_producer(project: Project) -> None:
    producer_consumer(
        project, "sleep 0.2; echo late > out.txt", "out.txt", "in.txt", "cat in.txt > got"
    )
    assert sharin.run(project).ok
    assert (project.root / "b" / "got").read_text() == "late\n"


def test_files_pass_into_and_out_of_a_nested_workflow(project: Project) -> None:
    """a → wf (forwarded to wf/inner) → wf's output (origin: wf/inner) → z."""
    a = sharin.add_task(project, "a", "echo seed > seed.txt")
    wf = sharin.add_component(project, "workflow", "wf")
    inner = sharin.add_task(project, "inner", "tr a-z A-Z < in.txt > result.txt", parent=wf)
    z = sharin.add_task(project, "z", "cat final.txt > got")
    sharin.connect_files(project, a, "seed.txt", wf, "wf_in")  # sibling edge into wf
    sharin.connect_files(project, wf, "wf_in", inner, "in.txt")  # parent → child (forwardTo)
    sharin.connect_files(project, inner, "result.txt", wf, "wf_out")  # child → parent (origin)
    sharin.connect_files(project, wf, "wf_out", z, "final.txt")  # out of wf to a sibling
    assert sharin.validate(project) == []

    result = sharin.run(project)

    assert result.ok, result.failed
    assert (project.root / "z" / "got").read_text() == "SEED\n"
    assert (project.root / "wf" / "inner" / "in.txt").read_text() == "seed\n"
    assert (project.root / "z" / "final.txt").resolve() == (
        project.root / "wf" / "inner" / "result.txt"
    )
    states = {k: r.state for k, r in journal_tasks(project.root, result.run).items()}
    assert states == {"a": "finished", "wf": "finished", "wf/inner": "finished", "z": "finished"}
    assert read_json(project.root / "wf" / "cmp.wheel.json")["state"] == "finished"
