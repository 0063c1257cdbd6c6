"""The clean planner on its own: what runs made is removed, whatever the file names; what was
there before, what git knows and what changed since is kept."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharin.model import cleaning, git

#: file names a user (or a script) may write: anything but "/", NUL, "." and ".." (and "out",
#: the directory the run of these tests makes)
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", "..", ".git", ".sharin", "wheel.log", "out"))


def _write(root: Path, rel: str, text: str = "x") -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    user=st.sets(names, max_size=6),
    made=st.sets(names, max_size=6),
    staged=st.sets(names, max_size=3),
    later=st.sets(names, max_size=3),
)
def test_only_what_a_run_made_is_removed(
    user: set[str], made: set[str], staged: set[str], later: set[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in user:
            _write(root, f"a/{n}", "user")
        before = cleaning.snapshot(root)
        outputs = {f"a/out/{n}" for n in made} | {f"a/{n}" for n in made - user}
        for rel in outputs:
            _write(root, rel, "made")
        after = cleaning.snapshot(root)
        for n in later - user - made:
            _write(root, f"a/{n}", "after the run")  # the user, after the run ended
        known = {f"a/{n}" for n in staged}
        runs = [cleaning.RunFiles(1, 1, before, after, 1.0)]
        plan = cleaning.plan_clean(root, "", runs, known=known)
        assert set(plan.remove) == outputs - known
        dirs = ({"a/out"} if made else set()) | ({"a"} if made and not user else set())
        assert set(plan.remove_dirs) == dirs
        kept = {f"a/{n}" for n in user | later} | known
        assert not kept & set(plan.remove) - outputs


@settings(max_examples=30, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=8))
def test_an_unreadable_manifest_is_none(value: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.json"
        path.write_text(json.dumps({"time": 1, "files": value}))
        got = cleaning.read_manifest(path)
        assert got is None or isinstance(got[1], dict)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(names, min_size=1, max_size=5))
def test_git_status_is_read_whatever_the_names(files: set[str]) -> None:
    if shutil.which("git") is None:  # pragma: no cover
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        git.init(root)
        for n in files:
            _write(root, f"d/{n}")
        git.add(root, [root / "d"])
        assert git.index_paths(root) == {f"d/{n}" for n in files}
        changed = git.changed_paths(root)
        assert changed == {f"d/{n}": "A " for n in files}
        run, unsaved = git.run_changes_and_unsaved(root)
        assert run == [] and sorted(unsaved) == sorted(changed)


def test_a_crashed_attempt_gets_the_files_made_before_its_last_record(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _write(root, "a/mine.txt")
    d = tmp_path / "run"
    cleaning.write_manifest(cleaning.next_before(d), cleaning.snapshot(root))
    _write(root, "a/out.txt")
    last = os.lstat(root / "a" / "out.txt").st_ctime
    cleaning.settle(root, d, last)
    ((n, _, after_path),) = cleaning.attempt_manifests(d)
    got = cleaning.read_manifest(after_path)
    assert n == 1 and got is not None and "a/out.txt" in got[1]
    # a file made after the engine's last record is not taken for the run's
    d2 = tmp_path / "run2"
    cleaning.write_manifest(cleaning.next_before(d2), cleaning.snapshot(root))
    _write(root, "a/later.txt")
    cleaning.settle(root, d2, last - 10.0)
    got = cleaning.read_manifest(cleaning.attempt_manifests(d2)[0][2])
    assert got is not None and "a/later.txt" not in got[1] and "a/out.txt" in got[1]


_NAME = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", "..", ".git", ".sharin", "wheel.log") and len(n.encode()) < 200)


@given(names=st.lists(_NAME, min_size=1, max_size=6, unique=True))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_streamed_file_list_reads_back_as_the_walk_found_it(names: list[str]) -> None:
    """The file list written entry by entry (clean's record of a run) holds every name as the
    walk found it, whatever characters it has."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "p")
        (root / "d").mkdir(parents=True)
        for i, name in enumerate(names):
            (root / ("d" if i % 2 else "") / name).write_text(name)
        out = Path(tmp, "files.json")
        cleaning.write_snapshot(out, root)
        got = cleaning.read_manifest(out)
        assert got is not None and got[1] == cleaning.snapshot(root)
        json.loads(out.read_text())  # one JSON document
