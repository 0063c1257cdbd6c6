"""What a component's end says when an error stopped it: words, not Python's reprs."""

from __future__ import annotations

import errno

from sharin.errors import ProjectError, describe_error


def test_a_file_system_error_names_the_file_in_words() -> None:
    e = OSError(errno.ENAMETOOLONG, "File name too long", "/p/a/xxx")
    text = describe_error(e)
    assert text.startswith("/p/a/xxx: File name too long")
    assert "OSError" not in text and "Errno" not in text


def test_sharins_own_errors_are_shown_as_they_are() -> None:
    assert describe_error(ProjectError("fix it", path="a/cmp.wheel.json")) == (
        "a/cmp.wheel.json: fix it"
    )


def test_anything_else_is_a_fault_to_report() -> None:
    text = describe_error(KeyError("x"))
    assert "internal error of sharin" in text and "please report it" in text
