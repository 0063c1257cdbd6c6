"""``sharin validate`` and ``sharin run`` on broken projects: exit 2, file and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import Cli
from ..helpers import tree_snapshot
from ..validation_cases import CASES, Case, build_valid


@pytest.mark.parametrize("verb", ["validate", "run"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_project_exits_2(cli: Cli, tmp_path: Path, case: Case, verb: str) -> None:
    p = build_valid(tmp_path / "demo")
    case.breaks(p)
    before = tree_snapshot(p.root)

    r = cli(verb, p.root, code=2)

    err = r.stderr
    assert err.startswith("error: ")
    assert any(f in err for f in case.files), err
    if case.field is not None:
        assert any(f"{f} [{case.field}]: " in err for f in case.files), err
    assert case.fragment in err
    assert r.stdout == ""
    assert tree_snapshot(p.root) == before
    assert not (p.root / ".sharin" / "journal.sqlite").exists()  # no run began
