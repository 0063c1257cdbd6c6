"""Project archives: export/import round trips, host mapping, states, and WHEEL-format projects
written by hand (raw JSON, as WHEEL writes it) for every component type sharin runs."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

import sharin
from sharin.model import archive_hosts

ROOT_ID = "10672f80-c3a6-11ef-9709-030ae2f94392"


def _cmp(ctype: str, name: str, cid: str, parent: str, **extra: Any) -> dict[str, Any]:
    """A component JSON with exactly the fields OPEN-WHEEL writes for a new component."""
    data: dict[str, Any] = {
        "parent": parent,
        "pos": {"x": 10, "y": 10},
        "ID": cid,
        "type": ctype,
        "name": name,
        "description": None,
        "env": {},
        "disable": False,
        "state": "not-started",
    }
    if ctype not in ("source", "viewer", "storage"):
        data.update(previous=[], next=[], inputFiles=[], outputFiles=[], cleanupFlag=2)
    if ctype == "task":
        data.update(
            script="run.sh",
            host="localhost",
            useJobScheduler=False,
            queue=None,
            submitOption=None,
            include=[],
            exclude=[],
        )
    data.update(extra)
    return data


def _write_project(
    root: Path, components: dict[str, dict[str, Any]], files: dict[str, str]
) -> None:
    """A WHEEL project on disk: ``components`` maps directory (relative) → cmp.wheel.json data."""
    root.mkdir(parents=True)
    paths = {"root": "./"}
    paths.update({d: f"./{d}" for d in components})
    rootc = _cmp("workflow", root.stem, ROOT_ID, "this is root", cleanupFlag=1)
    (root / "cmp.wheel.json").write_text(json.dumps(rootc, indent=4))
    for d, data in components.items():
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "cmp.wheel.json").write_text(json.dumps(data, indent=4))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        (root / rel).chmod(0o755)
    prj = {
        "version": 2,
        "name": root.stem,
        "description": "",
        "state": "not-started",
        "root": "/Users/someone/" + root.name,
        "ctime": "2024/12/27-01:25:47",
        "mtime": "2024/12/27-01:26:01",
        "componentPath": {
            (ROOT_ID if d == "root" else components[d]["ID"]): p for d, p in paths.items()
        },
    }
    (root / "prj.wheel.json").write_text(json.dumps(prj, indent=4))


def _tar(src: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return archive


def _by_type(tmp: Path) -> Path:
    """One project holding every component type sharin runs, with file edges between them."""
    ids = {
        n: f"{i:08x}-c3a6-11ef-9709-030ae2f94392"
        for i, n in enumerate(
            [
                "src",
                "t1",
                "wf",
                "wt",
                "cond",
                "yes",
                "no",
                "loop",
                "lt",
                "fe",
                "ft",
                "wh",
                "wht",
                "brk",
                "ps",
                "pt",
                "view",
                "store",
            ],
            start=1,
        )
    }
    R = ROOT_ID
    comps = {
        "src": _cmp(
            "source",
            "src",
            ids["src"],
            R,
            uploadOnDemand=False,
            outputFiles=[
                {"name": "data.txt", "dst": [{"dstNode": ids["t1"], "dstName": "in.txt"}]}
            ],
        ),
        "t1": _cmp(
            "task",
            "t1",
            ids["t1"],
            R,
            next=[ids["wf"]],
            inputFiles=[
                {"name": "in.txt", "src": [{"srcNode": ids["src"], "srcName": "data.txt"}]}
            ],
            outputFiles=[
                {"name": "out.txt", "dst": [{"dstNode": ids["wf"], "dstName": "win.txt"}]}
            ],
        ),
        "wf": _cmp(
            "workflow",
            "wf",
            ids["wf"],
            R,
            previous=[ids["t1"]],
            next=[ids["cond"]],
            inputFiles=[
                {
                    "name": "win.txt",
                    "src": [{"srcNode": ids["t1"], "srcName": "out.txt"}],
                    "forwardTo": [{"dstNode": ids["wt"], "dstName": "x.txt"}],
                }
            ],
        ),
        "wf/wt": _cmp(
            "task",
            "wt",
            ids["wt"],
            ids["wf"],
            inputFiles=[{"name": "x.txt", "src": [{"srcNode": ids["wf"], "srcName": "win.txt"}]}],
        ),
        "cond": _cmp(
            "if",
            "cond",
            ids["cond"],
            R,
            condition='WHEEL_X == "1"',
            env={"WHEEL_X": "1"},
            previous=[ids["wf"]],
            next=[ids["yes"]],
            **{"else": [ids["no"]]},
        ),
        "yes": _cmp("task", "yes", ids["yes"], R, previous=[ids["cond"]], next=[ids["loop"]]),
        "no": _cmp("task", "no", ids["no"], R, previous=[ids["cond"]]),
        "loop": _cmp(
            "for",
            "loop",
            ids["loop"],
            R,
            start=1,
            end=3,
            step=1,
            keep=None,
            previous=[ids["yes"]],
            next=[ids["fe"]],
        ),
        "loop/lt": _cmp("task", "lt", ids["lt"], ids["loop"]),
        "fe": _cmp(
            "foreach",
            "fe",
            ids["fe"],
            R,
            indexList=["a", "b"],
            keep=None,
            previous=[ids["loop"]],
            next=[ids["wh"]],
        ),
        "fe/ft": _cmp("task", "ft", ids["ft"], ids["fe"]),
        "wh": _cmp(
            "while",
            "wh",
            ids["wh"],
            R,
            condition="WHEEL_CURRENT_INDEX < 5",
            keep=None,
            previous=[ids["fe"]],
            next=[ids["ps"]],
        ),
        "wh/wht": _cmp("task", "wht", ids["wht"], ids["wh"], next=[ids["brk"]]),
        "wh/brk": _cmp(
            "break",
            "brk",
            ids["brk"],
            ids["wh"],
            condition='WHEEL_CURRENT_INDEX == "2"',
            previous=[ids["wht"]],
        ),
        "ps": _cmp(
            "parameterStudy",
            "ps",
            ids["ps"],
            R,
            parameterFile="parameterSetting.json",
            forceOverwrite=False,
            deleteLoopInstance=False,
            previous=[ids["wh"]],
            outputFiles=[
                {
                    "name": "res/",
                    "dst": [
                        {"dstNode": ids["view"], "dstName": "res/"},
                        {"dstNode": ids["store"], "dstName": "res/"},
                    ],
                }
            ],
        ),
        "ps/pt": _cmp("task", "pt", ids["pt"], ids["ps"]),
        "view": _cmp(
            "viewer",
            "view",
            ids["view"],
            R,
            inputFiles=[{"name": "res/", "src": [{"srcNode": ids["ps"], "srcName": "res/"}]}],
        ),
        "store": _cmp(
            "storage",
            "store",
            ids["store"],
            R,
            host="localhost",
            storagePath=str(tmp / "kept"),
            inputFiles=[{"name": "res/", "src": [{"srcNode": ids["ps"], "srcName": "res/"}]}],
            outputFiles=[],
        ),
    }
    log = 'echo "$SHARIN_TASK $WHEEL_CURRENT_INDEX" >> "$WHEEL_LOCAL_PRJDIR/ran.log"\n'
    files = {
        "src/data.txt": "hello\n",
        "t1/run.sh": "#!/bin/bash\n" + log + "tr a-z A-Z < in.txt > out.txt\n",
        "wf/wt/run.sh": "#!/bin/bash\n" + log + "cat x.txt > seen.txt\n",
        "yes/run.sh": "#!/bin/bash\n" + log,
        "no/run.sh": "#!/bin/bash\n" + log,
        "loop/lt/run.sh": "#!/bin/bash\n" + log,
        "fe/ft/run.sh": "#!/bin/bash\n" + log,
        "wh/wht/run.sh": "#!/bin/bash\n" + log,
        "ps/pt/run.sh": "#!/bin/bash\n" + log + "cat p.txt > out.txt\nprintf 'PNG' > plot.png\n",
        "ps/pt/p.txt": "p={{ P }} <&>\n",
    }
    root = tmp / "every_type.wheel"
    _write_project(root, comps, files)
    (root / "ps" / "parameterSetting.json").write_text(
        json.dumps(
            {
                "version": 2,
                "targetFiles": [{"targetNode": ids["pt"], "targetName": "p.txt"}],
                "params": [{"keyword": "P", "type": "list", "list": ["1", "2"]}],
                "scatter": [],
                "gather": [
                    {"srcName": "out.txt", "srcNode": ids["pt"], "dstName": "res/out_{{ P }}.txt"},
                    {
                        "srcName": "plot.png",
                        "srcNode": ids["pt"],
                        "dstName": "res/plot_{{ P }}.png",
                    },
                ],
            },
            indent=4,
        )
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def test_hand_written_wheel_project_of_every_type_imports_and_runs(tmp_path: Path) -> None:
    src = _by_type(tmp_path)
    archive = _tar(src, tmp_path / "WHEEL_project_every_type.tgz")
    p = sharin.import_project(archive, tmp_path / "imported")
    assert sharin.validate(p) == []
    result = sharin.run(p)
    assert result.ok, result.failed
    root = p.root
    ran = (root / "ran.log").read_text().split("\n")
    keys = sorted(line.split(" ")[0] for line in ran if line)
    assert keys == sorted(
        [
            "t1",
            "wf/wt",
            "yes",
            "loop_1/lt",
            "loop_2/lt",
            "loop_3/lt",
            "fe_a/ft",
            "fe_b/ft",
            "wh_0/wht",
            "wh_1/wht",
            "wh_2/wht",
            "ps_P_1/pt",
            "ps_P_2/pt",
        ]
    )
    assert (root / "wf" / "wt" / "seen.txt").read_text() == "HELLO\n"
    assert (root / "ps" / "res" / "out_2.txt").read_text() == "p=2 <&>\n"
    assert (tmp_path / "kept" / "res" / "out_1.txt").read_text() == "p=1 <&>\n"
    # WHEEL's rule: a destination ending in "/" is a directory the source goes into
    assert [x.name for x in sharin.viewer_images(p, "view")] == ["plot_1.png", "plot_2.png"]
    assert (root / "view" / "res" / "res").is_symlink()
    assert not (root / "no" / "status.wheel.txt").exists()  # the else branch was skipped


def test_round_trip_export_import_is_identical(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "rt")
    a = sharin.add_task(p, "a", "echo hi > out.txt", outputs=["out.txt"])
    b = sharin.add_task(p, "b", "cat in.txt")
    sharin.connect_files(p, a, "out.txt", b, "in.txt")
    sharin.add_component(p, "for", "loop", start=0, end=1, step=1)
    sharin.save(p, "version 1")
    archive = sharin.export_project(p, tmp_path / "out", name="me", memo="round trip")
    assert archive.name == "WHEEL_project_rt.tgz"
    with tarfile.open(archive) as tar:
        top = {n.split("/")[0] for n in tar.getnames()}
    assert top == {"rt.wheel"}
    q = sharin.import_project(archive, tmp_path / "back")

    def tree(root: Path) -> dict[str, bytes]:
        return {
            str(f.relative_to(root)): f.read_bytes()
            for f in sorted(root.rglob("*"))
            if f.is_file() and not {".git", ".sharin"} & set(f.parts) and f.name != "prj.wheel.json"
        }

    assert tree(p.root) == tree(q.root)
    before = json.loads((p.root / "prj.wheel.json").read_text())
    after = json.loads((q.root / "prj.wheel.json").read_text())
    assert after.pop("exportInfo")["exporter"] == {"name": "me", "memo": "round trip"}
    before.pop("root"), after.pop("root")
    assert before == after
    assert sharin.run(q).ok


def test_export_rewinds_states_and_import_can_keep_them(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "st")
    sharin.add_task(p, "a", "true")
    sharin.save(p)
    cmp = p.root / "a" / "cmp.wheel.json"
    data = json.loads(cmp.read_text())
    data["state"] = "finished"
    cmp.write_text(json.dumps(data))
    prj = json.loads((p.root / "prj.wheel.json").read_text())
    prj["state"] = "stopped"
    (p.root / "prj.wheel.json").write_text(json.dumps(prj))
    sharin.save(p, "saved mid-run")
    archive = sharin.export_project(p, tmp_path / "x.tgz")
    q = sharin.import_project(archive, tmp_path / "fresh")
    assert json.loads((q.root / "a" / "cmp.wheel.json").read_text())["state"] == "not-started"
    # an archive packed by hand from a project stopped mid-run, imported to resume
    r = sharin.import_project(
        _tar(p.root, tmp_path / "raw.tgz"), tmp_path / "keep", keep_state=True
    )
    assert json.loads((r.root / "a" / "cmp.wheel.json").read_text())["state"] == "finished"
    result = sharin.run(r)
    assert result.resumed and result.ok


def test_unknown_hosts_must_be_mapped(tmp_path: Path, config_dir: Path) -> None:
    p = sharin.new_project(tmp_path / "h")
    sharin.add_task(p, "a", "true")
    sharin.set_property(p, "a", "host", "fugaku")
    sharin.set_property(p, "a", "useJobScheduler", True)
    sharin.save(p)
    archive = sharin.export_project(p, tmp_path / "h.tgz")
    assert archive_hosts(p.root) == {"fugaku": ["a/cmp.wheel.json"]}
    with pytest.raises(sharin.ProjectError, match=r"fugaku \(in a/cmp.wheel.json\).*--host-map"):
        sharin.import_project(archive, tmp_path / "no")
    assert not (tmp_path / "no" / "h.wheel").exists()
    with pytest.raises(sharin.ProjectError, match="does not know: fugaku=nowhere"):
        sharin.import_project(archive, tmp_path / "no", host_map={"fugaku": "nowhere"})
    asked: list[str] = []

    def ask(label: str, files: list[str]) -> str:
        asked.append(label)
        return "localhost"

    q = sharin.import_project(archive, tmp_path / "yes", ask_host=ask)
    assert asked == ["fugaku"]
    data = json.loads((q.root / "a" / "cmp.wheel.json").read_text())
    assert (data["host"], data["useJobScheduler"]) == ("localhost", False)
    assert sharin.run(q).ok


def test_import_refuses_a_non_project_and_an_occupied_target(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a tar file")
    with pytest.raises(sharin.ProjectError, match="junk.tgz: cannot be read as a project archive"):
        sharin.import_project(junk, tmp_path)
    p = sharin.new_project(tmp_path / "occ")
    sharin.add_task(p, "a", "true")
    sharin.save(p)
    archive = sharin.export_project(p, tmp_path / "occ.tgz")
    with pytest.raises(sharin.ProjectError, match="already exists and is not empty"):
        sharin.import_project(archive, tmp_path)
