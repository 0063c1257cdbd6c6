"""Archives: export writes only what import accepts (links stay inside the project), import
explains what it refuses and leaves nothing behind when it does."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sharin

from ..conftest import Cli


def _linked_project(tmp_path: Path, target: str) -> sharin.Project:
    p = sharin.new_project(tmp_path / "ln")
    sharin.add_task(p, "a", "cat data.txt")
    os.symlink(target, p.root / "a" / "data.txt")
    sharin.save(p)
    return p


def test_export_refuses_an_absolute_link_or_copies_its_target(cli: Cli, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "dataset.txt"
    shared.parent.mkdir()
    shared.write_text("shared data\n")
    p = _linked_project(tmp_path, str(shared))
    err = cli("export", p.root, "-o", tmp_path / "x.tgz", code=2).stderr
    assert f"a/data.txt -> {shared}" in err and "--dereference" in err and "relative" in err
    assert not (tmp_path / "x.tgz").exists()

    cli("export", p.root, "-o", tmp_path / "x.tgz", "--dereference")
    with tarfile.open(tmp_path / "x.tgz") as tar:
        member = tar.getmember("ln.wheel/a/data.txt")
        assert member.isfile()
    q = sharin.import_project(tmp_path / "x.tgz", tmp_path / "in")
    assert (q.root / "a" / "data.txt").read_text() == "shared data\n"
    assert not (q.root / "a" / "data.txt").is_symlink()
    assert sharin.run(q).ok


def test_export_refuses_a_relative_link_out_of_the_project(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x\n")
    p = _linked_project(tmp_path, "../../outside.txt")
    err = cli("export", p.root, "-o", tmp_path / "x.tgz", code=2).stderr
    assert "a/data.txt -> ../../outside.txt" in err
    cli("export", p.root, "-o", tmp_path / "x.tgz", "--dereference")


def test_links_inside_the_project_travel_as_links(tmp_path: Path) -> None:
    p = _linked_project(tmp_path, "../shared.txt")
    (p.root / "shared.txt").write_text("inside\n")
    sharin.save(p)
    q = sharin.import_project(sharin.export_project(p, tmp_path / "x.tgz"), tmp_path / "in")
    link = q.root / "a" / "data.txt"
    assert link.is_symlink() and os.readlink(link) == "../shared.txt"


def _tar(entries: dict[str, bytes | str], into: Path, links: dict[str, str] | None = None) -> Path:
    """An archive by hand: files (path → content) and symbolic links (path → target)."""
    with tarfile.open(into, "w:gz") as tar:
        for name, data in entries.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return into


def _project_files(name: str = "hand") -> dict[str, bytes | str]:
    p = sharin.new_project(Path(os.environ["SHARIN_CONFIG_DIR"]).parent / "src" / name)
    return {
        f"{name}.wheel/{f}": (p.root / f).read_text() for f in ("prj.wheel.json", "cmp.wheel.json")
    }


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../elsewhere", "../.."])
def test_import_refuses_links_that_leave_the_project(cli: Cli, tmp_path: Path, target: str) -> None:
    archive = _tar(_project_files(), tmp_path / "l.tgz", {"hand.wheel/a/link": target})
    err = cli("import", archive, tmp_path / "in", code=2).stderr
    assert "leave the project" in err
    assert not (tmp_path / "in").exists()


def test_import_of_a_directory_refuses_links_that_leave_it(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "d")
    os.symlink("../../x", p.root / "link")
    with pytest.raises(sharin.ProjectError, match=r"link -> \.\./\.\./x"):
        sharin.import_project(p.root, tmp_path / "in")
    assert not (tmp_path / "in").exists()


def test_import_names_the_unknown_hosts_without_a_terminal(cli: Cli, tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "h")
    sharin.add_task(p, "a", "true")
    sharin.set_property(p, "a", "host", "fugaku")
    sharin.save(p)
    archive = sharin.export_project(p, tmp_path / "h.tgz")
    err = cli("import", archive, tmp_path / "in", code=2).stderr
    assert "fugaku (in a/cmp.wheel.json)" in err and "--host-map fugaku=HOST" in err
    assert "host map names unknown hosts: \n" not in err
    err = cli("import", archive, tmp_path / "in", "--host-map", "fugaku=nowhere", code=2).stderr
    assert "fugaku=nowhere" in err and "localhost" in err
    cli("import", archive, tmp_path / "in", "--host-map", "fugaku=localhost")
    assert not (tmp_path / "no").exists()


def test_import_of_wheels_old_format_says_so(cli: Cli, tmp_path: Path) -> None:
    old = {"old.wheel/swf.prj.json": "{}", "old.wheel/define.wf.json": "{}"}
    err = cli("import", _tar(old, tmp_path / "old.tgz"), tmp_path / "in", code=2).stderr
    assert "before 2019" in err and "swf.prj.json" in err and "WHEEL" in err
    d = tmp_path / "olddir"
    d.mkdir()
    (d / "swf.prj.json").write_text("{}")
    err = cli("import", d, tmp_path / "in", code=2).stderr
    assert "before 2019" in err
    assert not (tmp_path / "in").exists()


def test_import_refuses_a_project_name_that_is_a_path(cli: Cli, tmp_path: Path) -> None:
    files = _project_files()
    prj = json.loads(str(files["hand.wheel/prj.wheel.json"]))
    prj["name"] = "../../escaped"
    files["hand.wheel/prj.wheel.json"] = json.dumps(prj)
    err = cli("import", _tar(files, tmp_path / "n.tgz"), tmp_path / "a" / "b", code=2).stderr
    assert "[name]" in err and "not a project name" in err
    assert not (tmp_path / "escaped.wheel").exists() and not (tmp_path / "a").exists()


def test_a_failed_import_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    files = _project_files()
    files["hand.wheel/a/cmp.wheel.json"] = "{ not json"
    err = cli("import", _tar(files, tmp_path / "bad.tgz"), tmp_path / "a" / "b", code=2).stderr
    assert "a/cmp.wheel.json" in err and "malformed JSON" in err
    assert not (tmp_path / "a").exists()


def test_an_import_that_cannot_write_its_target_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "w")
    archive = sharin.export_project(p, tmp_path / "w.tgz")
    (tmp_path / "afile").write_text("in the way\n")
    err = cli("import", archive, tmp_path / "afile" / "sub", code=2).stderr
    assert "cannot create the project here" in err and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "in the way\n"


def test_an_export_that_cannot_write_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "w")
    (tmp_path / "afile").write_text("in the way\n")
    err = cli("export", p.root, "-o", tmp_path / "afile" / "x.tgz", code=2).stderr
    assert "cannot write the archive" in err and "Traceback" not in err
    out = tmp_path / "x.tgz"
    cli("export", p.root, "-o", out)
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".x.tgz")] == []
    with tarfile.open(out) as tar:
        assert "w.wheel/prj.wheel.json" in tar.getnames()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    where = tmp_path_factory.mktemp("exported")
    p = sharin.new_project(where / "whole")
    sharin.add_task(p, "a", "echo a > out.txt", outputs=["out.txt"])
    sharin.save(p)
    return sharin.export_project(p, where / "whole.tgz").read_bytes()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_cut_or_corrupt_archive_is_one_clear_error_and_leaves_nothing(
    cli: Cli, tmp_path_factory: pytest.TempPathFactory, exported: bytes, data: st.DataObject
) -> None:
    """An archive cut short (a download that stopped), with bytes changed, or not an archive
    at all: exit 2 with the file named and what to do, and nothing made in the parent."""
    how = data.draw(st.sampled_from(["cut", "flipped", "random"]))
    if how == "cut":
        raw = exported[: data.draw(st.integers(0, len(exported) - 1))]
    elif how == "flipped":
        at = data.draw(st.integers(10, len(exported) - 1))  # past gzip's header
        raw = exported[:at] + bytes([exported[at] ^ 0xFF]) + exported[at + 1 :]
    else:
        raw = data.draw(st.binary(max_size=200))
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "bad.tgz").write_bytes(raw)
    (tmp / "into").mkdir()
    r = cli("import", tmp / "bad.tgz", tmp / "into", code=None)
    if r.exit_code == 0:  # only what leaves every file whole: the end of gzip's padding
        got = tmp / "into" / "whole.wheel" / "a"
        assert (got / "run.sh").read_text() == "#!/bin/sh\necho a > out.txt\n"
        assert how == "cut" and len(raw) >= len(exported) - 8, len(exported) - len(raw)
        return
    assert r.exit_code == 2, r.output
    assert "bad.tgz" in r.stderr and "Traceback" not in r.output and "Aborted" not in r.output
    assert list((tmp / "into").iterdir()) == []
