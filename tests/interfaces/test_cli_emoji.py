"""Messages show names and values as they are written: rich's emoji codes are off."""

from __future__ import annotations

from sharin import Project

from ..conftest import Cli


def test_a_value_like_an_emoji_code_is_printed_as_written(cli: Cli, project: Project) -> None:
    cli("add", project.root, "task", "t", "--script-text", "true", "--set", 'host=":smile:"')
    err = cli("validate", project.root, code=2).stderr
    assert "unknown host ':smile:'" in err, err
    assert "😄" not in err
