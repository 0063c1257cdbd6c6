"""sharin continues runs that OPEN-WHEEL stopped, and writes trips, instances and tasks as WHEEL
wrote them: the files WHEEL left (``tests/data/open-wheel``, from OPEN-WHEEL's own tests) are
compared, field by field, with the ones sharin writes for the trips and instances it runs.

Fields compared, where WHEEL writes them: ``type``, ``ID``, ``parent``, ``name`` (the trip's or
instance's own), ``state``, ``originalName``, ``initialized``, ``currentIndex``, ``numTotal``,
``numFinished``/``numFailed`` (the counts when the trip or instance was made), ``subComponent``;
for tasks ``ancestorsName``, ``ancestorsType``, ``parentType``, ``workingDir``, ``rt`` and the format of
``dispatchedTime``/``startTime``/``endTime``; and ``status.wheel.txt``'s first two lines.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import sharin

from ..helpers import read_json

DATA = Path(__file__).resolve().parents[1] / "data" / "open-wheel"
WHEEL_TIME = re.compile(r"\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\.\d{3}")

TRIP_FIELDS = ("type", "ID", "parent", "state", "originalName", "initialized", "numTotal")
TRIP_FIELDS += ("numFailed", "subComponent", "start", "end", "step")
INSTANCE_FIELDS = ("type", "ID", "parent", "state", "numTotal", "subComponent", "parameterFile")
TASK_FIELDS = ("type", "ID", "parent", "name", "state", "ancestorsType", "parentType", "script")
TASK_FIELDS += ("rt",)


def copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(DATA / name, dst)
    return dst


def cmp(root: Path, rel: str) -> dict[str, Any]:
    return read_json(root / rel / "cmp.wheel.json")


def same(got: dict[str, Any], want: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        assert key in want, f"WHEEL's file has no {key}"  # the fixture says what WHEEL writes
        assert got.get(key, "<absent>") == want[key], f"{where}: {key}"


def same_task(root: Path, rel: str, wheel: dict[str, Any]) -> None:
    got = cmp(root, rel)
    same(got, wheel, TASK_FIELDS, rel)
    assert got["ancestorsName"] == rel.rsplit("/", 1)[0]
    assert got["workingDir"] == str(root / rel)
    for key in ("dispatchedTime", "startTime", "endTime"):
        assert WHEEL_TIME.fullmatch(wheel[key]) and WHEEL_TIME.fullmatch(got[key]), key
    assert (root / rel / "status.wheel.txt").read_text().splitlines()[:2] == ["finished", "0"]


def test_a_for_loop_wheel_stopped_is_continued_and_written_as_wheel_writes_it(
    tmp_path: Path,
) -> None:
    root = copy("restart_for.wheel", tmp_path)
    # the task records the index it ran with: WHEEL left WHEEL_CURRENT_INDEX=2 in the loop's env
    # (trips are copies of the trip before, as in WHEEL: the script goes into the last one too)
    for d in ("for0", "for0_1"):
        (root / d / "task0" / "run.sh").write_text(
            'pwd > hoge.txt\necho "$WHEEL_CURRENT_INDEX $WHEEL_PREV_INDEX" > index.txt\n'
        )
    wheel_trip = cmp(root, "for0_1")
    wheel_task = cmp(root, "for0_1/task0")

    result = sharin.run(root)

    assert result.ok, result.failed
    assert result.resumed
    # WHEEL's finished trip was not run again; trips 2 and 3 ran with their own index
    assert not (root / "for0_1" / "task0" / "index.txt").exists()
    assert (root / "for0_1" / "task0" / "output.txt").exists()
    for n in (2, 3):
        assert (root / f"for0_{n}" / "task0" / "index.txt").read_text() == f"{n} {n - 1}\n"
        trip = cmp(root, f"for0_{n}")
        same(trip, wheel_trip, TRIP_FIELDS, f"for0_{n}")
        assert (trip["name"], trip["currentIndex"], trip["prevIndex"]) == (f"for0_{n}", n, n - 1)
        assert trip["numFinished"] == n - 1
        same_task(root, f"for0_{n}/task0", wheel_task)
    loop = cmp(root, "for0")
    assert (loop["state"], loop["originalName"], loop["numFinished"]) == ("finished", "for0", 3)
    assert "initialized" not in loop and "currentIndex" not in loop
    assert cmp(root, "")["state"] == "finished"
    prj = read_json(root / "prj.wheel.json")
    assert (prj["state"], prj["readOnly"]) == ("finished", False)


def test_a_parameter_study_wheel_stopped_is_continued_and_written_as_wheel_writes_it(
    tmp_path: Path,
) -> None:
    root = copy("restart_PS.wheel", tmp_path)
    wheel_instance = cmp(root, "PS0_time_10")
    wheel_task = cmp(root, "PS0_time_10/task0")
    before = {t: (root / f"PS0_time_{t}" / "task0" / "output.txt").exists() for t in (0, 5, 10)}

    result = sharin.run(root)

    assert result.ok, result.failed
    assert all(before.values())
    for t in (15, 20):
        inst = cmp(root, f"PS0_time_{t}")
        same(inst, wheel_instance, INSTANCE_FIELDS, f"PS0_time_{t}")
        assert inst["name"] == f"PS0_time_{t}"
        assert "originalName" not in inst  # a study's instances have none (``_PSHandler``)
        same_task(root, f"PS0_time_{t}/task0", wheel_task)
        assert (root / "PS0" / f"{t}_hoge.txt").exists()  # gathered
    study = cmp(root, "PS0")
    assert (study["state"], study["numTotal"]) == ("finished", 5)
    assert "initialized" not in study
