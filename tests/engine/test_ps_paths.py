"""Parameter studies: templates, scatter and gather checked by validate, and again in the run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import sharin
from sharin import Component, Project

from ..helpers import edit_json, journal_tasks, write_json
from .test_paths import run_unchecked


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "demo", git=False)


def _study(p: Project, setting: dict[str, Any]) -> tuple[Component, Component]:
    ps = sharin.add_component(p, "parameterStudy", "ps")
    t = sharin.add_task(p, "t", "cat in.txt > out.txt", parent=ps)
    (t.directory / "in.txt").write_text("n={{ N }}\n")
    base = {"version": 2, "targetFiles": [], "params": [{"keyword": "N", "list": ["1", "2"]}]}
    write_json(ps.directory / "parameterSetting.json", {**base, **setting})
    return ps, t


def _problems(p: Project) -> dict[str, str]:
    return {f"{x.file} [{x.field}]": x.message for x in sharin.validate(p.root)}


def test_a_template_that_is_not_utf8_names_the_file_in_validate_and_run(project: Project) -> None:
    ps, t = _study(project, {})
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [{"targetNode": t.id, "targetName": "in.txt"}],
            "params": [{"keyword": "N", "list": ["1"]}],
        },
    )
    (t.directory / "in.txt").write_bytes("n={{ N }} é\n".encode("latin-1"))
    problems = _problems(project)
    message = problems["ps/parameterSetting.json [targetFiles[0]]"]
    assert "'t/in.txt' is not UTF-8 text" in message and "save it as UTF-8" in message
    result = run_unchecked(project.root)
    assert not result.ok
    text = " ".join(result.failed)
    assert "t/in.txt" in text and "save it as UTF-8" in text
    assert "UnicodeDecodeError" not in text


def test_validate_checks_that_targets_exist_and_stay_in_the_project(
    project: Project, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("{{ N }}")
    ps, _ = _study(project, {"targetFiles": ["missing.txt", "link.txt"]})
    (ps.directory / "link.txt").symlink_to(outside)
    problems = _problems(project)
    assert "does not exist" in problems["ps/parameterSetting.json [targetFiles[0]]"]
    assert "outside the project" in problems["ps/parameterSetting.json [targetFiles[1]]"]


def test_validate_checks_scatter_and_gather_names_and_nodes(project: Project) -> None:
    ps, t = _study(
        project,
        {
            "scatter": [{"srcName": "a.dat", "dstNode": "no-such-id", "dstName": ""}],
            "gather": [{"srcName": "out.txt", "srcNode": "nope", "dstName": "r/"}],
        },
    )
    problems = _problems(project)
    assert "no-such-id" in problems["ps/parameterSetting.json [scatter[0].dstNode]"]
    assert "nope" in problems["ps/parameterSetting.json [gather[0].srcNode]"]
    for rule, field in (
        ({"scatter": [{"srcName": "../../secret", "dstName": "x"}]}, "scatter[0].srcName"),
        ({"scatter": [{"srcName": "a", "dstName": "/tmp/x"}]}, "scatter[0].dstName"),
        ({"gather": [{"srcName": "out.txt", "dstName": "../../victim"}]}, "gather[0].dstName"),
        ({"gather": [{"srcName": "/etc/*", "dstName": ""}]}, "gather[0].srcName"),
    ):
        base = {"version": 2, "targetFiles": [], "params": [{"keyword": "N", "list": ["1"]}]}
        write_json(ps.directory / "parameterSetting.json", {**base, **rule})
        problems = _problems(project)
        message = problems["ps/cmp.wheel.json [parameterFile]"]
        assert f"{field}:" in message and "must stay inside" in message, message


def test_an_unknown_scatter_node_fails_the_run_with_a_message(project: Project) -> None:
    ps, _ = _study(project, {"scatter": [{"srcName": "a.dat", "dstNode": "x-id", "dstName": ""}]})
    (ps.directory / "a.dat").write_text("a")
    result = run_unchecked(project.root)
    assert not result.ok
    text = " ".join(result.failed)
    assert "dstNode 'x-id' is not the ID of a component" in text
    assert "KeyError" not in text


def test_scatter_and_gather_do_not_go_through_links_out_of_the_project(
    project: Project, tmp_path: Path
) -> None:
    secret = tmp_path / "secrets"
    secret.mkdir()
    (secret / "key.dat").write_text("secret")
    ps, t = _study(project, {"scatter": [{"srcName": "data/*.dat", "dstName": "got/"}]})
    (ps.directory / "data").symlink_to(secret)
    result = run_unchecked(project.root)
    assert not result.ok
    assert "outside the project" in " ".join(result.failed)
    assert not list(project.root.glob("ps_*/got"))


def test_gather_does_not_write_through_a_link_out_of_the_project(
    project: Project, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ps, t = _study(project, {})
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [],
            "params": [{"keyword": "N", "list": ["1"]}],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "res/{{ N }}.txt"}],
        },
    )
    # made while the study runs (a link there before would stop the study at its start)
    (t.directory / "run.sh").write_text(
        f"#!/bin/sh\necho n > out.txt\nln -s {elsewhere} ../../ps/res\n"
    )
    result = run_unchecked(project.root)
    assert not result.ok
    message = journal_tasks(project.root, result.run)["ps_N_1"].message or ""
    assert message.startswith("gather: ") and "outside the project" in message
    assert os.listdir(elsewhere) == []


def test_a_parameter_file_outside_is_not_read(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "setting.json"
    write_json(
        outside, {"version": 2, "targetFiles": [], "params": [{"keyword": "N", "list": ["1"]}]}
    )
    ps, _ = _study(project, {})
    for name in ("../../setting.json", str(outside)):
        edit_json(ps.file, lambda d, n=name: d.__setitem__("parameterFile", n))
        problems = _problems(project)
        assert "ps/cmp.wheel.json [parameterFile]" in problems
        result = run_unchecked(project.root)
        assert not result.ok
        assert "parameter file" in " ".join(result.failed)
        assert not list(project.root.glob("ps_*"))


def test_validate_checks_a_bulk_jobs_templates(project: Project) -> None:
    b = sharin.add_task(project, "bulk", "true", ctype="bulkjobTask")
    write_json(
        b.directory / "parameterSetting.json",
        {"version": 2, "targetFiles": ["in.txt"], "params": [{"keyword": "N", "list": ["1"]}]},
    )
    (b.directory / "in.txt").write_bytes(b"\xff{{ N }}\n")
    problems = _problems(project)
    assert "save it as UTF-8" in problems["bulk/parameterSetting.json [targetFiles[0]]"]


def test_a_scattered_directory_holding_a_link_out_of_the_project_is_not_copied(
    project: Project, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    ps, _ = _study(project, {"scatter": [{"srcName": "data", "dstName": "data"}]})
    (ps.directory / "data").mkdir()
    (ps.directory / "data" / "ok.txt").write_text("ok")
    (ps.directory / "data" / "key.txt").symlink_to(secret)
    result = run_unchecked(project.root)
    assert not result.ok
    text = " ".join(result.failed)
    assert "'ps/data/key.txt' leads through a symbolic link" in text
    assert not [p for p in project.root.rglob("key.txt") if not p.is_symlink()]


def test_a_study_whose_directory_links_out_of_the_project_makes_no_instance(
    project: Project, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    ps, t = _study(project, {})
    (t.directory / "key.txt").symlink_to(secret)
    result = run_unchecked(project.root)
    assert not result.ok
    assert "'ps/t/key.txt' leads through a symbolic link" in " ".join(result.failed)
    assert not list(project.root.glob("ps_*"))
