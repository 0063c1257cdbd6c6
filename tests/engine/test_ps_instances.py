"""How a parameter study makes its instance directories (``_control._InstanceMaker``).

Each instance must be exactly what a plain copy of the template gives (``shutil.copy`` of each
file: content and permission bits), with its target files rendered and its own
``cmp.wheel.json`` written as ``write_json_atomic`` writes it, however the engine makes it
(contents read once, files created and written from memory, in a worker thread).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sharin
from sharin import Component, Project, RunOptions
from sharin.engine import _control
from sharin.errors import ProjectError
from sharin.model import write_json_atomic

from ..helpers import journal_tasks, read_json, write_json

LOG = 'echo "$SHARIN_TASK" >> "$SHARIN_PROJECT_DIR/ran.log"\n'


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "demo", git=False)


def parameter_file(ps: Component, setting: dict[str, Any]) -> None:
    write_json(ps.directory / "parameterSetting.json", {"version": 2, **setting})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path below ``root``: its permission bits and, for a file, its content."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            p = Path(d, name)
            out[str(p.relative_to(root))] = (mode(p), None)
        for name in files:
            p = Path(d, name)
            out[str(p.relative_to(root))] = (mode(p), p.read_bytes())
    return out


def study(project: Project, script: str = "cat in.txt > out.txt") -> tuple[Component, Component]:
    """A study ``ps`` (axis K = 1, 2, 3) holding task ``t``, whose ``in.txt`` is rendered."""
    ps = sharin.add_component(project, "parameterStudy", "ps")
    t = sharin.add_task(project, "t", LOG + script, parent=ps)
    (t.directory / "in.txt").write_text("k={{ K }}\n")
    parameter_file(
        ps,
        {
            "targetFiles": [{"targetNode": t.id, "targetName": "in.txt"}],
            "params": [{"keyword": "K", "list": [1, 2, 3]}],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "out_{{ K }}.txt"}],
        },
    )
    return ps, t


@pytest.mark.parametrize("cached", [True, False], ids=["from-memory", "copied"])
def test_an_instance_is_a_plain_copy_of_the_template(
    project: Project, cached: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not cached:  # every file too large to be kept: the general way (shutil.copy)
        monkeypatch.setattr(_control, "_CACHED_FILE_MAX", -1)
    ps, t = study(project)
    (t.directory / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (t.directory / "tool.sh").chmod(0o751)
    (t.directory / "private.dat").write_bytes(b"\x00\xff" * 70_000)
    (t.directory / "private.dat").chmod(0o600)
    (t.directory / "empty").write_bytes(b"")
    (ps.directory / "deep" / "er").mkdir(parents=True)
    (ps.directory / "deep" / "er" / "x.txt").write_text("x\n")
    (ps.directory / "link.txt").symlink_to("deep/er/x.txt")  # followed, as shutil.copy does
    template = tree(ps.directory)

    result = sharin.run(project.root, options=RunOptions(max_local=2))

    assert result.ok, result.failed
    root = project.root
    for k in (1, 2, 3):
        inst = root / f"ps_K_{k}"
        got = tree(inst)
        # what the task and the engine added, and what differs on purpose
        assert got.pop("t/out.txt")[1] == f"k={k}\n".encode()
        assert got.pop("t/in.txt")[1] == f"k={k}\n".encode()
        # the task's state where WHEEL keeps it, in the instance as in WHEEL
        assert got.pop("t/status.wheel.txt")[1] == b"finished\n0\n0\n"
        assert got.pop("cmp.wheel.json")[0] == mode(ps.directory / "cmp.wheel.json")
        assert got.pop("link.txt") == (mode(ps.directory / "deep/er/x.txt"), b"x\n")
        want = {
            rel: v
            for rel, v in template.items()
            if rel not in ("cmp.wheel.json", "parameterSetting.json", "t/in.txt", "link.txt")
        }
        want["t/cmp.wheel.json"] = (want["t/cmp.wheel.json"][0], got["t/cmp.wheel.json"][1])
        assert got == want
        assert not [p for p in inst.rglob(".tmp-*")]  # no temporary file left behind
        assert (root / "ps" / f"out_{k}.txt").read_text() == f"k={k}\n"
    assert (root / "ps_K_2" / "t" / "tool.sh").read_text() == "#!/bin/sh\necho tool\n"


def test_the_instance_json_is_what_write_json_atomic_writes(project: Project) -> None:
    ps, _ = study(project)
    sharin.set_property(project, "ps", "description", "ünïcode stays as it is")
    data = dict(sharin.open_project(project.root).component("ps").data)

    assert sharin.run(project.root).ok

    # WHEEL's bookkeeping of an instance, and its state once it ran
    data.update(subComponent=True, state="finished")
    data.update(initialized=True, numTotal=3, numFinished=0, numFailed=0)
    expected = project.root / "expected.json"
    for k in (1, 2, 3):
        write_json_atomic(expected, {**data, "name": f"ps_K_{k}"})
        inst = project.root / f"ps_K_{k}" / "cmp.wheel.json"
        assert inst.read_bytes() == expected.read_bytes()
        assert mode(inst) == mode(expected)


def test_a_template_file_changed_during_the_run_reaches_later_instances(
    project: Project,
) -> None:
    """Contents are read once but read again when the template changes: with one instance in
    flight at a time, each instance sees what the one before it left in the template."""
    ps, t = study(
        project,
        "cat in.txt > out.txt; cat ../data.txt >> out.txt\n"
        'echo "from $WHEEL_PS_PARAM_K" > ../../ps/data.txt\n'  # same size every time
        'echo "k2={{ K }}$WHEEL_PS_PARAM_K" > ../../ps/t/in.txt\n'
        "sleep 0.3\n",  # so that the next instance may keep what it reads
    )
    (ps.directory / "data.txt").write_text("from 0\n")

    result = sharin.run(project.root, options=RunOptions(max_local=1, launch_window=1))

    assert result.ok, result.failed
    root = project.root
    assert (root / "ps_K_1" / "t" / "out.txt").read_text() == "k=1\nfrom 0\n"
    assert (root / "ps_K_2" / "t" / "out.txt").read_text() == "k2=21\nfrom 1\n"
    assert (root / "ps_K_3" / "t" / "out.txt").read_text() == "k2=32\nfrom 2\n"


def test_an_instance_directory_left_by_an_earlier_run_is_filled_again(project: Project) -> None:
    """Without forceOverwrite, an existing instance directory is reused: its files are
    overwritten as ``shutil.copy`` overwrites them, its own JSON keeps its permission bits,
    and files the template does not have stay."""
    ps, t = study(project)
    (t.directory / "tool.sh").write_text("new\n")
    inst = project.root / "ps_K_2"
    (inst / "t").mkdir(parents=True)
    (inst / "t" / "tool.sh").write_text("old and longer\n")
    (inst / "t" / "in.txt").write_text("stale\n")
    (inst / "stray.txt").write_text("left alone\n")
    write_json(inst / "cmp.wheel.json", {"subComponent": True, "state": "failed"})
    (inst / "cmp.wheel.json").chmod(0o640)

    assert sharin.run(project.root).ok

    assert (inst / "t" / "tool.sh").read_text() == "new\n"
    assert (inst / "t" / "out.txt").read_text() == "k=2\n"
    assert (inst / "stray.txt").read_text() == "left alone\n"
    data = read_json(inst / "cmp.wheel.json")
    assert (data["subComponent"], data["state"], data["type"]) == (
        True,
        "finished",
        "parameterStudy",
    )
    assert mode(inst / "cmp.wheel.json") == 0o640


def test_force_overwrite_starts_instances_afresh(project: Project) -> None:
    ps, _ = study(project)
    sharin.set_property(project, "ps", "forceOverwrite", True)
    inst = project.root / "ps_K_1"
    inst.mkdir()
    (inst / "stray.txt").write_text("removed\n")

    assert sharin.run(project.root).ok

    assert not (inst / "stray.txt").exists()
    assert (inst / "t" / "out.txt").read_text() == "k=1\n"


def test_a_target_that_cannot_be_rendered_fails_its_instance_without_a_file(
    project: Project,
) -> None:
    ps, t = study(project)
    (t.directory / "in.txt").write_text("k={{ K }}{{ NOT_A_PARAMETER }}\n")

    result = sharin.run(project.root, options=RunOptions(keep_going=True))

    assert result.state == "failed"
    assert any("NOT_A_PARAMETER" in f and "in.txt" in f for f in result.failed), result.failed
    assert not (project.root / "ran.log").exists()
    assert not (project.root / "ps_K_1" / "t" / "in.txt").exists()
    assert journal_tasks(project.root, result.run)["ps"].state == "failed"


def test_instance_json_snapshot_ignores_states_written_meanwhile(project: Project) -> None:
    """The instance JSON is prepared once; the study's own state and counts (written by the
    state mirror while instances are made) never leak into it: it has its own state and the
    counts it was made with."""
    study(project)
    assert sharin.run(project.root).ok
    for k in (1, 2, 3):
        data = json.loads((project.root / f"ps_K_{k}" / "cmp.wheel.json").read_text())
        assert (data["state"], data["subComponent"]) == ("finished", True)
        assert (data["numTotal"], data["numFinished"], data["numFailed"]) == (3, 0, 0)


def test_a_gathered_file_is_copied_whole_into_a_new_or_an_existing_destination(
    project: Project,
) -> None:
    ps, _ = study(project)
    (ps.directory / "out_2.txt").write_text("from an earlier run\n")  # replaced whole
    (ps.directory / "keep.txt").write_text("kept\n")
    (ps.directory / "out_3.txt").symlink_to("keep.txt")  # replaced, never written through
    umask = os.umask(0o022)
    os.umask(umask)

    assert sharin.run(project.root).ok

    for k in (1, 2, 3):
        out = ps.directory / f"out_{k}.txt"
        assert not out.is_symlink() and out.read_text() == f"k={k}\n"
        assert mode(out) == 0o666 & ~umask  # as shutil.copyfile makes a file
    assert (ps.directory / "keep.txt").read_text() == "kept\n"
    assert not list(ps.directory.glob(".*sharin-tmp"))


def test_the_in_place_copy_takes_only_a_regular_file_to_a_free_name(tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_bytes(b"x" * 100_000)
    new = tmp_path / "new.txt"
    assert _control._copy_to_new_file(src, new) and new.read_bytes() == src.read_bytes()
    taken = tmp_path / "taken.txt"
    taken.write_text("kept")
    dangling = tmp_path / "dangling"
    dangling.symlink_to("nowhere")
    (tmp_path / "d").mkdir()
    for dst in (taken, dangling, tmp_path / "missing" / "x.txt"):
        assert not _control._copy_to_new_file(src, dst)
    assert not _control._copy_to_new_file(tmp_path / "d", tmp_path / "d2")
    assert taken.read_text() == "kept" and dangling.is_symlink()
    assert not (tmp_path / "d2").exists() and not (tmp_path / "missing").exists()


def test_a_target_file_named_like_the_instance_json_does_not_stop_the_instance(
    project: Project,
) -> None:
    ps, t = study(project)
    setting = read_json(ps.directory / "parameterSetting.json")
    (ps.directory / "notes.txt").write_text("K is {{ K }}\n")
    setting["targetFiles"].append("notes.txt")
    write_json(ps.directory / "parameterSetting.json", setting)

    assert sharin.run(project.root).ok
    assert (project.root / "ps_K_2" / "notes.txt").read_text() == "K is 2\n"
    assert read_json(project.root / "ps_K_2" / "cmp.wheel.json")["name"] == "ps_K_2"


def test_the_in_place_copy_reads_and_writes_where_sendfile_is_refused(tmp_path: Path) -> None:
    # procfs files say they are regular files, and sendfile refuses them (EINVAL)
    dst = tmp_path / "status.txt"
    assert _control._copy_to_new_file(Path("/proc/self/status"), dst)
    assert dst.read_text().startswith("Name:")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000], ids=["022", "077", "000"])
def test_instance_files_get_the_modes_a_plain_copy_gives_under_any_umask(
    project: Project, umask: int
) -> None:
    """Template files keep their mode (``shutil.copy``), a rendered target gets what
    ``open(path, "w")`` gives, the instance's JSON what ``write_json_atomic`` gives, whether
    the umask takes bits from them or not."""
    ps, t = study(project)
    (t.directory / "tool.sh").write_text("#!/bin/sh\n")
    (t.directory / "tool.sh").chmod(0o751)
    (t.directory / "shared.dat").write_text("s")
    (t.directory / "shared.dat").chmod(0o666)
    (t.directory / "in.txt").write_text("k={{ K }} ü\n")
    expected = project.root / "expected.json"
    old = os.umask(umask)
    try:
        write_json_atomic(expected, {"x": 1})
        plain = project.root / "plain.txt"
        with open(plain, "w") as f:
            f.write("x")
        assert sharin.run(project.root).ok
    finally:
        os.umask(old)
    inst = project.root / "ps_K_2"
    assert mode(inst / "t" / "tool.sh") == 0o751
    assert mode(inst / "t" / "shared.dat") == 0o666
    assert mode(inst / "t" / "in.txt") == mode(plain) == 0o666 & ~umask
    assert (inst / "t" / "in.txt").read_bytes() == "k=2 ü\n".encode()
    assert mode(inst / "cmp.wheel.json") == mode(expected)


def test_a_gathered_file_that_leads_out_of_the_project_is_not_copied(
    project: Project, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    study(project, f"ln -s {secret} out.txt")
    result = sharin.run(project.root)
    assert not result.ok
    message = journal_tasks(project.root, result.run)["ps_K_1"].message or ""
    assert message.startswith("gather: ") and "outside the project" in message
    assert not list((project.root / "ps").glob("out_*"))


def test_a_gathered_link_inside_the_project_and_a_missing_file_are_as_before(
    project: Project,
) -> None:
    ps, t = study(project, 'if [ "$WHEEL_PS_PARAM_K" = 2 ]; then ln -s in.txt out.txt; fi; true')
    result = sharin.run(project.root)
    assert result.ok, result.failed
    got = ps.directory / "out_2.txt"
    assert not got.is_symlink() and got.read_text() == "k=2\n"  # the link's file, copied
    # an instance without the file gathers nothing (a name without glob characters that
    # matches nothing is no error, as in WHEEL)
    assert not (ps.directory / "out_1.txt").exists()
    assert not (ps.directory / "out_3.txt").exists()


def test_gather_rules_each_rendered_before_any_is_copied(project: Project) -> None:
    ps, t = study(project)
    setting = read_json(ps.directory / "parameterSetting.json")
    setting["gather"].append({"srcName": "out.txt", "srcNode": t.id, "dstName": "{{ nope }}"})
    write_json(ps.directory / "parameterSetting.json", setting)
    result = sharin.run(project.root)
    assert not result.ok
    message = journal_tasks(project.root, result.run)["ps_K_1"].message or ""
    assert message.startswith("gather: ") and "nope" in message
    assert not list(ps.directory.glob("out_*"))  # the first rule copied nothing either


_NAME_PART = st.sampled_from(
    ["out.txt", "sub", "a b", ".", "..", "", "*.txt", "ü", "x\\y", "{x}", "{{ K }}.txt"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    src=st.lists(_NAME_PART, min_size=1, max_size=3).map("/".join),
    dst=st.lists(_NAME_PART, min_size=1, max_size=3).map("/".join),
    dst_taken=st.booleans(),
)
def test_the_study_gather_does_what_the_general_gather_does(
    tmp_path_factory: pytest.TempPathFactory, src: str, dst: str, dst_taken: bool
) -> None:
    """Whatever the rule's names, the study's gather (strings, prepared once) copies what
    :func:`_control.gather` copies, or fails with the same message."""
    from sharin.model import ParameterSetting, expand_space
    from sharin.model._paramstudy import parse_parameter_setting
    from sharin.model._paths import Bounds

    outcomes = []
    for way in ("general", "study"):
        root = tmp_path_factory.mktemp(way) / "p"
        (root / ".sharin").mkdir(parents=True)
        inst = root / "ps_K_1"
        for rel in (
            "t/out.txt",
            "t/sub/out.txt",
            "t/a b",
            "t/ü",
            "t/x\\y",
            "t/{x}",
            "t/z.txt",
            "t/1.txt",
        ):
            (inst / rel).parent.mkdir(parents=True, exist_ok=True)
            (inst / rel).write_text(rel)
        cdir = root / "ps"
        (cdir / "sub").mkdir(parents=True)
        if dst_taken:
            (cdir / "out.txt").write_text("there before")
        try:
            setting: ParameterSetting = parse_parameter_setting(
                {
                    "version": 2,
                    "params": [{"keyword": "K", "list": ["1"]}],
                    "gather": [{"srcName": src, "srcNode": "tid", "dstName": dst}],
                },
                cdir / "parameterSetting.json",
            )
        except ProjectError:
            assume(False)  # a rule the parameter file may not hold
        [vector] = list(expand_space(setting, cdir))
        bounds = Bounds.of(root)
        try:
            if way == "general":
                _control.gather(root, setting, vector, inst, cdir, {"tid": "t"}, bounds)
            else:
                _control._Gatherer(root, setting, cdir, {"tid": "t"}, bounds)(vector, inst)
            outcome = ("ok", tree(cdir))
        except Exception as e:  # noqa: BLE001 - compared, not handled
            outcome = (type(e).__name__, str(e).replace(str(root), "ROOT"))
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]
