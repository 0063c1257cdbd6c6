"""WHEEL project archives built in memory, as WHEEL's export writes them, for import tests."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

ROOT_ID = "20672f80-c3a6-11ef-9709-030ae2f94392"


def wheel_archive(name: str, tasks: dict[str, str]) -> bytes:
    """A ``.tgz`` of a WHEEL project ``<name>.wheel`` whose root workflow holds one task per
    entry of ``tasks`` (task name → its ``host`` label), each running ``run.sh``."""
    ids = {t: f"{i + 1:08x}-c3a6-11ef-9709-030ae2f94392" for i, t in enumerate(tasks)}
    files: dict[str, bytes] = {}

    def put(rel: str, data: Any) -> None:
        files[rel] = json.dumps(data, indent=4).encode()

    common = {"pos": {"x": 10, "y": 10}, "description": None, "env": {}, "disable": False}
    put(
        "cmp.wheel.json",
        {
            **common,
            "parent": "this is root",
            "ID": ROOT_ID,
            "type": "workflow",
            "name": name,
            "state": "not-started",
            "previous": [],
            "next": [],
            "inputFiles": [],
            "outputFiles": [],
            "cleanupFlag": 1,
        },
    )
    for task, host in tasks.items():
        put(
            f"{task}/cmp.wheel.json",
            {
                **common,
                "parent": ROOT_ID,
                "ID": ids[task],
                "type": "task",
                "name": task,
                "state": "not-started",
                "previous": [],
                "next": [],
                "inputFiles": [],
                "outputFiles": [],
                "cleanupFlag": 2,
                "script": "run.sh",
                "host": host,
                "useJobScheduler": False,
                "queue": None,
                "submitOption": None,
                "include": [],
                "exclude": [],
            },
        )
        files[f"{task}/run.sh"] = b"echo hello\n"
    put(
        "prj.wheel.json",
        {
            "version": 2,
            "name": name,
            "description": "",
            "state": "not-started",
            "root": f"/Users/someone/{name}.wheel",
            "ctime": "2024/12/27-01:25:47",
            "mtime": "2024/12/27-01:26:01",
            "componentPath": {ROOT_ID: "./", **{ids[t]: f"./{t}" for t in tasks}},
        },
    )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{name}.wheel/{rel}")
            info.size = len(data)
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
