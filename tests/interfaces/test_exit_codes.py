"""Every CLI verb's error paths give the README's exit codes: 0 ok, 1 a task failed, 2 bad
input, 3 stopped, 4 another engine runs the project — with one clear message, no traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import sharin

from ..conftest import Cli
from ..helpers import another_engine, edit_json, read_json, tree_snapshot

Setup = Callable[[sharin.Project, Path], None]


def _nothing(p: sharin.Project, config: Path) -> None:
    pass


def _failing_task(p: sharin.Project, config: Path) -> None:
    sharin.add_task(p, "bad", "exit 3")


def _ran(p: sharin.Project, config: Path) -> None:
    sharin.run(p)


def _corrupt_journal(p: sharin.Project, config: Path) -> None:
    sharin.run(p)
    (p.root / ".sharin" / "journal.sqlite").write_bytes(b"this is not a database" * 50)


def _broken_component(p: sharin.Project, config: Path) -> None:
    (p.root / "a" / "cmp.wheel.json").write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def _wrong_type(p: sharin.Project, config: Path) -> None:
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(previous=7, retry=True))


def _bad_remotehost(p: sharin.Project, config: Path) -> None:
    (config / "remotehost.json").write_text(json.dumps([{"name": "x", "port": "ssh"}]))


@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    args: tuple[str, ...]  #: after the verb; "P" is the project's path
    code: int
    says: str = ""  #: a part of stderr
    busy: bool = False  #: another engine holds the project meanwhile


CASES = [
    Case("new-exists", _nothing, ("new", "P"), 2, "already exists"),
    Case("new-bad-name", _nothing, ("new", "a b"), 2, "may use only letters"),
    Case("copy-missing", _nothing, ("copy", "nowhere", "x"), 2, "no such project"),
    Case("add-bad-type", _nothing, ("add", "P", "tsak", "x"), 2, "unknown component type"),
    Case(
        "add-bad-value",
        _nothing,
        ("add", "P", "task", "x", "--set", "retry=-1"),
        2,
        "x/cmp.wheel.json [retry]: must be a whole number from 0 to 100 (or empty), not -1",
    ),
    Case("connect-unknown", _nothing, ("connect", "P", "a", "zz"), 2, "no component 'zz'"),
    Case("set-unknown", _nothing, ("set", "P", "zz", "retry=1"), 2, "no component 'zz'"),
    Case("set-id", _nothing, ("set", "P", "a", "ID=x"), 2, "cannot be changed"),
    Case(
        "set-bad-value",
        _nothing,
        ("set", "P", "a", "retry=1000000000"),
        2,
        "a/cmp.wheel.json [retry]: must be a whole number from 0 to 100 (or empty), "
        "not 1000000000; nothing was changed",
    ),
    Case("set-bool", _nothing, ("set", "P", "a", "retry=true"), 2, "(or empty), not true"),
    Case("validate-wrong-type", _wrong_type, ("validate", "P"), 2, "a/cmp.wheel.json [previous]"),
    Case(
        "validate-not-json", _broken_component, ("validate", "P"), 2, "is not a text file in UTF-8"
    ),
    Case("validate-remotehost", _bad_remotehost, ("validate", "P"), 2, "remotehost.json [x.port]"),
    Case("run-invalid", _wrong_type, ("run", "P"), 2, "[retry]: must be a whole number"),
    Case("run-task-fails", _failing_task, ("run", "P", "-q"), 1),
    Case("run-busy", _nothing, ("run", "P"), 4, "already running", busy=True),
    Case("run-detach-busy", _nothing, ("run", "P", "--detach"), 4, "another engine", busy=True),
    Case("run-corrupt-journal", _corrupt_journal, ("run", "P"), 2, ".sharin/journal.sqlite"),
    Case("status-corrupt-journal", _corrupt_journal, ("status", "P"), 2, "journal.sqlite"),
    Case("runs-corrupt-journal", _corrupt_journal, ("runs", "P"), 2, "journal.sqlite"),
    Case("status-no-such-run", _ran, ("status", "P", "--run", "9"), 2, "there is no run 9"),
    Case("status-broken-project", _broken_component, ("status", "P"), 0),
    Case("status-wrong-type", _wrong_type, ("status", "P"), 0),
    Case("log-no-run", _nothing, ("log", "P", "a"), 2, "has not been run yet"),
    Case("stop-idle", _nothing, ("stop", "P"), 0),
    Case("save-busy", _nothing, ("save", "P"), 4, "while the project runs", busy=True),
    Case("revert-busy", _nothing, ("revert", "P"), 4, "while the project runs", busy=True),
    Case("clean-busy", _nothing, ("clean", "P"), 4, "while the project runs", busy=True),
    Case("export-missing", _nothing, ("export", "nowhere.wheel"), 2, "no such project"),
    Case(
        "set-unreadable-project",
        lambda p, c: (p.root / "prj.wheel.json").write_text("{"),
        ("set", "P", "a", "retry=1"),
        2,
        "prj.wheel.json: could not be read when the project was opened",
    ),
    Case("import-missing", _nothing, ("import", "nowhere.tgz"), 2, "does not exist"),
    Case("revert-broken-project", _broken_component, ("revert", "P"), 0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_exit_codes_follow_the_readme(
    cli: Cli, project: sharin.Project, config_dir: Path, case: Case
) -> None:
    sharin.add_task(project, "a", "echo hi > out.txt", outputs=["out.txt"])
    sharin.save(project)
    case.setup(project, config_dir)
    args = [str(project.root) if a == "P" else a for a in case.args]
    before = tree_snapshot(project.root)
    if case.busy:
        with another_engine(project):
            r = cli(*args, code=case.code)
    else:
        r = cli(*args, code=case.code)
    assert "Traceback" not in r.output
    for word in ("None", "True", "NoneType", "utf-8-sig", "Expected `"):
        assert word not in r.stderr
    if case.code != 0:
        assert r.stderr.startswith(("error: ", "Usage: ")) or case.code == 1, r.stderr
        assert case.says in r.stderr, r.stderr
    if case.id == "revert-broken-project":
        assert sharin.validate(project.root) == []  # the last save is back
    if case.code in (2, 4) and case.args[0] not in ("new", "copy"):
        after = {k: v for k, v in tree_snapshot(project.root).items() if ".sharin" not in k}
        assert after == {k: v for k, v in before.items() if ".sharin" not in k}


def test_set_checks_every_value_before_writing_any(cli: Cli, project: sharin.Project) -> None:
    a = sharin.add_task(project, "a", "true")
    before = read_json(a.file)
    r = cli("set", project.root, "a", "ignoreFailure=true", "retry=abc", code=2)
    assert (
        'a/cmp.wheel.json [retry]: must be a whole number from 0 to 100 (or empty), not "abc"'
        in r.stderr
    )
    assert read_json(a.file) == before
    cli("set", project.root, "a", "retry=100", "retry=", "retryTimes=3")
    assert read_json(a.file)["retryTimes"] == 3 and read_json(a.file)["retry"] == ""
