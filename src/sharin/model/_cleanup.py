"""``cleanupFlag``: whether a task's working directory on its host is removed after stage-out.

``0`` removes it, ``1`` keeps it, ``2`` (the default) does as the parent says; the first value
that is not ``2`` on the way up decides, and the project's top saying ``2`` keeps. Numbers and
strings mean the same. WHEEL reads the field differently (:func:`wheel_removes_host_dir`).
"""

from __future__ import annotations

from ._component import Component

__all__ = ["CLEANUP_KEEP", "CLEANUP_PARENT", "CLEANUP_REMOVE", "cleanup_flag", "removes_host_dir"]

CLEANUP_REMOVE, CLEANUP_KEEP, CLEANUP_PARENT = 0, 1, 2


def cleanup_flag(c: Component) -> int:
    """A component's own ``cleanupFlag`` as a number: ``0``/``"0"`` remove, ``1``/``"1"``
    keep, anything else (``2``, ``"2"``, empty, absent) as the parent says."""
    value = c.data.get("cleanupFlag")
    if isinstance(value, bool):
        return CLEANUP_PARENT
    text = str(value).strip() if isinstance(value, int | str) else ""
    if text == "0":
        return CLEANUP_REMOVE
    if text == "1":
        return CLEANUP_KEEP
    return CLEANUP_PARENT


def removes_host_dir(c: Component) -> bool:
    """Whether sharin removes ``c``'s working directory on its host after its stage-out."""
    node: Component | None = c
    while node is not None:
        flag = cleanup_flag(node)
        if flag != CLEANUP_PARENT:
            return flag == CLEANUP_REMOVE
        node = node.parent
    return False


def wheel_removes_host_dir(c: Component) -> bool:
    """Whether OPEN-WHEEL removes it (``dispatcher.js``): a task's own number ``0`` removes;
    its number ``2`` takes its workflow's choice, which is "remove" only when that workflow's
    field is the string ``"0"`` (the dispatcher compares with strings, the editor writes
    numbers, and a workflow's ``"2"`` does not look further up). The server's
    ``defaultCleanupRemoteRoot`` (false by default) is taken as false."""
    own = c.data.get("cleanupFlag")
    if isinstance(own, int) and not isinstance(own, bool) and own == CLEANUP_PARENT:
        parent = c.parent
        return parent is not None and parent.data.get("cleanupFlag") == "0"
    return isinstance(own, int) and not isinstance(own, bool) and own == CLEANUP_REMOVE
