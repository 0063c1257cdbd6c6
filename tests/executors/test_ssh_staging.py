"""The staging rules (one module for every transport) and the widened transport protocol on
this machine (LocalTransport)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.engine._files import same_host
from sharin.engine._protocol import HostLink
from sharin.errors import ExecutorError, SharinError, TransportError
from sharin.executors._staging import (
    SYSTEM_FILES,
    copy_matching,
    files_to_send,
    glob_match,
    host_glob,
    link_escapes,
    link_on_host,
    linked_patterns,
    remove_working_dir,
    select,
    wanted_patterns,
)
from sharin.executors._transport import LocalTransport
from sharin.model import Component, HostConfig

segment = st.text(alphabet="abcxyz._-", min_size=1, max_size=5).filter(lambda s: s not in ".")
rel_path = st.lists(segment, min_size=1, max_size=4).map("/".join)


@given(rel_path)
def test_a_path_matches_itself_and_star_does_not_cross_a_slash(rel: str) -> None:
    assert glob_match(rel, rel)
    assert glob_match(rel, "**")
    assert glob_match(rel, "*") == ("/" not in rel)


@given(rel_path, rel_path)
def test_a_trailing_slash_is_the_directory_content(d: str, name: str) -> None:
    [p] = wanted_patterns([d + "/"])
    assert glob_match(f"{d}/{name.split('/')[0]}", p)
    assert not glob_match(d, p)


@given(st.lists(rel_path, max_size=8), st.lists(rel_path, max_size=3))
def test_exclude_wins_and_system_files_never_come_back(rels: list[str], exclude: list[str]) -> None:
    entries = [(r, False) for r in [*rels, *SYSTEM_FILES]]
    chosen = select(entries, ["**", "*"], exclude)
    assert not set(chosen) & SYSTEM_FILES
    for r in chosen:
        assert not any(glob_match(r, e) for e in exclude)
    for r in rels:
        if r not in SYSTEM_FILES and not any(glob_match(r, e) for e in exclude):
            assert r in chosen


def test_a_matched_directory_comes_back_whole() -> None:
    entries = [("out", True), ("out/a", False), ("out/sub", True), ("out/sub/b", False)]
    assert select(entries, ["out"]) == ["out"]
    assert select(entries, ["out/"]) == ["out/a", "out/sub"]
    assert select(entries, ["**"], ["out/sub*"]) == [
        "out",
    ]


def test_files_to_send_follows_links_and_skips_wheel_files(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    (root / "t" / "d").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    (root / "data").write_text("x")
    (root / "t" / "cmp.wheel.json").write_text("{}")
    (root / "t" / "d" / "cmp.wheel.json").write_text("{}")  # only the top one is WHEEL's
    (root / "t" / "in").symlink_to("../data")
    (root / "t" / "gone").symlink_to("nowhere")
    sent = dict(files_to_send(root / "t"))
    assert set(sent) == {"d/", "d/cmp.wheel.json", "in"}
    assert sent["in"].resolve() == (root / "data").resolve()


def test_files_to_send_refuses_a_link_out_of_the_project(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    (root / "t").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    (tmp_path / "secret").write_text("s")
    (root / "t" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(ExecutorError, match="leak"):
        files_to_send(root / "t")


def test_local_run_with_cwd_env_stdin_and_exit_code(tmp_path: Path) -> None:
    t = LocalTransport()
    r = asyncio.run(
        t.run('cat; echo "$FOO"; pwd; exit 3', cwd=str(tmp_path), env={"FOO": "a b"}, stdin="in\n")
    )
    assert r.returncode == 3
    assert r.stdout.splitlines() == ["in", "a b", str(tmp_path)]
    with pytest.raises(TransportError, match="within"):
        asyncio.run(t.run("sleep 5", timeout=0.2))
    with pytest.raises(TransportError, match="variable name"):
        asyncio.run(t.run("true", env={"A-B": "1"}))


def test_local_stream_files_and_atomic_write(tmp_path: Path) -> None:
    t = LocalTransport()

    async def go() -> list[str]:
        return [line async for line in t.stream("echo a; echo b >&2; echo c")]

    assert asyncio.run(go()) == ["a", "b", "c"]
    f = str(tmp_path / "d" / "f")
    asyncio.run(t.mkdir(str(tmp_path / "d")))
    asyncio.run(t.write_bytes(f, b"one"))
    asyncio.run(t.write_bytes(f, b"two"))
    assert asyncio.run(t.read_bytes(f)) == b"two"
    assert os.listdir(tmp_path / "d") == ["f"]  # no temporary left
    s = asyncio.run(t.stat(f))
    assert s is not None and s.is_file and s.size == 3
    assert asyncio.run(t.stat(str(tmp_path / "none"))) is None
    assert asyncio.run(t.listdir(str(tmp_path))) == ["config", "d"]


def test_a_local_write_failing_half_way_leaves_the_old_file(tmp_path: Path) -> None:
    """The write fails half-way (past a file size limit): the final name keeps its old
    content, never a part of the new one, and the temporary is removed."""
    import resource
    import subprocess
    import sys

    target = tmp_path / "out.dat"
    target.write_bytes(b"old")
    code = (
        "import asyncio, sys\n"
        "from sharin.executors._transport import LocalTransport\n"
        "asyncio.run(LocalTransport().write_bytes(sys.argv[1], b'x' * 1_000_000))\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        preexec_fn=limit,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode != 0 and b"File too large" in proc.stderr
    assert target.read_bytes() == b"old"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.dat.")]


# ------------------------------------------------------------------------ stage-out safety
def _project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "p.wheel"
    (root / "t").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    return root


def test_stage_out_keeps_links_inside_the_task_and_refuses_those_leading_out(
    tmp_path: Path,
) -> None:
    job = tmp_path / "job"
    (job / "sub").mkdir(parents=True)
    (job / "data.txt").write_text("data")
    (job / "inner").symlink_to("data.txt")
    (job / "sub" / "back").symlink_to("../data.txt")
    (job / "leak").symlink_to("/etc/passwd")
    (job / "up").symlink_to("../../x")
    (job / "sub" / "out").symlink_to("../../x")  # inside a directory that comes back
    root = _project_dir(tmp_path)
    refused: list[str] = []
    copied = copy_matching(job, ["*"], root / "t", [], refused=refused)
    assert sorted(copied) == ["data.txt", "inner", "leak", "sub", "up"]
    t = root / "t"
    assert os.readlink(t / "inner") == "data.txt" and (t / "inner").read_text() == "data"
    assert os.readlink(t / "sub" / "back") == "../data.txt"
    for gone in ("leak", "up", "sub/out"):
        assert not (t / gone).exists() and not (t / gone).is_symlink()
    assert len(refused) == 3
    assert any("'leak' is a symbolic link to '/etc/passwd'" in w for w in refused)
    assert any("'sub/out'" in w for w in refused)
    assert not [p.name for p in t.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_stage_out_that_cannot_be_done_changes_no_file(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "a.txt").write_text("new")
    (job / "clash").write_text("a file")
    root = _project_dir(tmp_path)
    (root / "t" / "a.txt").write_text("old")
    (root / "t" / "clash").mkdir()
    with pytest.raises(ExecutorError, match="clash.*directory.*nothing was copied back"):
        copy_matching(job, ["*.txt", "clash"], root / "t", [])
    assert (root / "t" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in (root / "t").iterdir()) == ["a.txt", "clash"]


def test_a_stage_out_writing_past_a_size_limit_leaves_the_old_files(tmp_path: Path) -> None:
    """The copy fails half-way (a file size limit): every file keeps its old content, none
    is half-written under its final name, no temporary is left."""
    import resource
    import subprocess
    import sys

    job = tmp_path / "job"
    job.mkdir()
    (job / "a.txt").write_bytes(b"a" * 1000)
    (job / "big.dat").write_bytes(b"x" * 1_000_000)
    root = _project_dir(tmp_path)
    (root / "t" / "a.txt").write_text("old a")
    (root / "t" / "big.dat").write_text("old big")
    code = (
        "import sys; from pathlib import Path\n"
        "from sharin.executors._staging import copy_matching\n"
        "copy_matching(Path(sys.argv[1]), ['*'], Path(sys.argv[2]), [])\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    proc = subprocess.run(
        [sys.executable, "-c", code, str(job), str(root / "t")],
        preexec_fn=limit,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode != 0 and b"File too large" in proc.stderr
    assert (root / "t" / "a.txt").read_text() == "old a"
    assert (root / "t" / "big.dat").read_text() == "old big"
    assert sorted(p.name for p in (root / "t").iterdir()) == ["a.txt", "big.dat"]


link_part = st.sampled_from(["a", "b", "..", ".", "c.d"])


@settings(max_examples=50)
@given(
    st.lists(st.sampled_from(["a", "b"]), max_size=3),
    st.booleans(),
    st.lists(link_part, min_size=1, max_size=5),
)
def test_a_link_escapes_exactly_when_it_leads_out_of_the_directory(
    where: list[str], absolute: bool, target_parts: list[str]
) -> None:
    import tempfile

    target = ("/" if absolute else "") + "/".join(target_parts)
    rel = "/".join([*where, "link"])
    with tempfile.TemporaryDirectory() as d:
        top = Path(d) / "job"
        (top / Path(rel).parent).mkdir(parents=True, exist_ok=True)
        (top / rel).symlink_to(target)
        real = os.path.realpath(top / rel)
        inside = real == str(top.resolve()) or real.startswith(str(top.resolve()) + "/")
    assert link_escapes(rel, target) == (not inside)


# ------------------------------------------------------------------------ host-side rules
tree_name = st.sampled_from(["a", "b", ".h", "ab", "a.txt", "b.dat"])
tree = st.lists(st.lists(tree_name, min_size=1, max_size=3), max_size=10)
pattern_part = st.sampled_from(["a", "*", "?", "a*", "*.txt", ".*", "[ab]", "b.dat", "**", "x"])


@settings(deadline=None, max_examples=60)
@given(tree, st.lists(pattern_part, min_size=1, max_size=3))
def test_host_glob_matches_what_glob_matches_here(paths: list[list[str]], parts: list[str]) -> None:
    import glob
    import tempfile

    pattern = "/".join(parts)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for p in paths:
            *dirs, leaf = p
            base = root.joinpath(*dirs) if dirs else root
            try:  # a part that is a file already cannot hold another
                base.mkdir(parents=True, exist_ok=True)
                if not (base / leaf).exists():
                    (base / leaf).write_text("x")
            except (NotADirectoryError, FileExistsError):
                continue
        expected = sorted(glob.glob(pattern, root_dir=root))
        assert asyncio.run(host_glob(LocalTransport(), str(root), pattern)) == expected


def test_inputs_are_linked_on_the_host_with_the_delivery_rules(tmp_path: Path) -> None:
    made = tmp_path / "run" / "make"
    (made / "res").mkdir(parents=True)
    (made / "out.txt").write_text("out")
    (made / "res" / "a.dat").write_text("a")
    (made / "res" / "b.dat").write_text("b")
    job = tmp_path / "run" / "use"
    job.mkdir()
    (job / "in.txt").write_text("uploaded before")  # replaced by the link
    t = LocalTransport()
    links = [
        HostLink("make", str(made), "out.txt", "in.txt"),
        HostLink("make", str(made), "res/*.dat", "inputs/"),
        HostLink("make", str(made), "*.none", ""),  # a glob matching nothing: nothing
    ]
    got = asyncio.run(link_on_host(t, str(job), links, ["run.sh"]))
    assert got == ["in.txt", "inputs/res/a.dat", "inputs/res/b.dat"]
    assert os.readlink(job / "in.txt") == "../make/out.txt"
    assert (job / "in.txt").read_text() == "out"
    assert os.readlink(job / "inputs" / "res" / "b.dat") == "../../../make/res/b.dat"
    pats = linked_patterns(links)
    assert all(any(glob_match(m, x) for x in pats) for m in got), pats
    assert not any(glob_match("out.txt", x) or glob_match("res/a.dat", x) for x in pats)

    missing = HostLink("make", str(made), "gone.txt", "x")
    with pytest.raises(ExecutorError, match="make has no file 'gone.txt'.*looked in"):
        asyncio.run(link_on_host(t, str(job), [missing]))
    for bad in (
        HostLink("make", str(made), "out.txt", "run.sh"),
        HostLink("make", str(made), "out.txt", "cmp.wheel.json"),
    ):
        with pytest.raises(ExecutorError, match="own file"):
            asyncio.run(link_on_host(t, str(job), [bad], ["run.sh"]))
    for bad in (
        HostLink("make", str(made), "out.txt", "../x"),
        HostLink("make", str(made), "/etc/passwd", "x"),
    ):
        with pytest.raises(ExecutorError, match="nothing was linked"):
            asyncio.run(link_on_host(t, str(job), [bad]))
    assert not (tmp_path / "run" / "x").exists() and not (job / "x").exists()


def test_a_working_directory_is_removed_only_below_the_hosts_path(tmp_path: Path) -> None:
    t = LocalTransport()
    root = tmp_path / "jobs"
    (root / "run" / "t").mkdir(parents=True)
    (root / "run" / "t" / "f").write_text("x")
    asyncio.run(remove_working_dir(t, str(root), str(root / "run" / "t")))
    assert not (root / "run" / "t").exists() and (root / "run").is_dir()
    for where in (str(root), str(tmp_path), "/", f"{root}/../x", f"{root}x/y"):
        with pytest.raises(ExecutorError, match="not below the host's path"):
            asyncio.run(remove_working_dir(t, str(root), where))
    with pytest.raises(ExecutorError, match="not below"):
        asyncio.run(remove_working_dir(t, "", str(root / "run")))
    assert (root / "run").is_dir()


def _tar_of(src: Path) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(src)), recursive=False)
    return buf.getvalue()


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "merged"])
def test_a_tree_unpacked_on_a_host_appears_whole_or_not_at_all(
    tmp_path: Path, existing: bool
) -> None:
    from sharin.executors._ssh import _unpack_beside

    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("new a")
    (src / "d" / "big.dat").write_bytes(os.urandom(1 << 20))
    data = _tar_of(src)
    dst = tmp_path / "host" / "job"
    if existing:
        dst.mkdir(parents=True)
        (dst / "a.txt").write_text("old a")
        (dst / "other").write_text("kept")
    t = LocalTransport()
    broken = asyncio.run(t.run(_unpack_beside(str(dst)), stdin=data[: len(data) // 2]))
    assert broken.returncode != 0
    if existing:
        assert sorted(p.name for p in dst.iterdir()) == ["a.txt", "other"]
        assert (dst / "a.txt").read_text() == "old a"
    else:
        assert not dst.exists()
    assert [p.name for p in dst.parent.iterdir()] == (["job"] if existing else [])
    done = asyncio.run(t.run(_unpack_beside(str(dst)), stdin=data))
    assert done.returncode == 0, done.output
    assert (dst / "a.txt").read_text() == "new a"
    assert (dst / "d" / "big.dat").read_bytes() == (src / "d" / "big.dat").read_bytes()
    assert (dst / "other").exists() == existing
    assert [p.name for p in dst.parent.iterdir()] == ["job"]


# ------------------------------------------------------------------------ cleanupFlag
def _flags_project(tmp_path: Path) -> dict[str, Component]:
    import sharin

    p = sharin.new_project(tmp_path / "flags")
    root = p.root
    sharin.add_component(root, "workflow", "wf", cleanupFlag=0)
    sharin.add_component(root, "workflow", "inner", parent="wf", cleanupFlag=2)
    sharin.add_component(root, "for", "loop", parent="wf", start=0, end=1, step=1)
    sharin.add_component(root, "parameterStudy", "ps", cleanupFlag="1")
    sharin.add_component(root, "workflow", "inps", parent="ps", cleanupFlag="2")
    for name, parent, flag in (
        ("a", "wf/inner", 2),
        ("b", "wf/inner", "2"),
        ("c", "wf/inner", 1),
        ("d", "wf/loop", 2),
        ("e", "ps/inps", 2),
        ("f", "ps/inps", "0"),
        ("top", None, 2),
        ("none", None, None),
        ("zero", None, 0),
        ("one", None, "1"),
    ):
        props = {} if flag is None else {"cleanupFlag": flag}
        sharin.add_task(root, name, "true", parent=parent, **props)
    return {c.rel: c for c in sharin.open_project(root).root_component.walk()}


def test_cleanup_flag_each_value_and_its_inheritance(tmp_path: Path) -> None:
    from sharin.engine._files import removes_host_dir

    c = _flags_project(tmp_path)
    # a workflow set to 0 removes through a child workflow set to 2 (WHEEL would keep)
    assert removes_host_dir(c["wf/inner/a"]) and removes_host_dir(c["wf/inner/b"])
    assert not removes_host_dir(c["wf/inner/c"])
    assert removes_host_dir(c["wf/loop/d"])  # through a loop
    assert not removes_host_dir(c["ps/inps/e"])  # a parameter study set to "1"
    assert removes_host_dir(c["ps/inps/f"])
    assert not removes_host_dir(c["top"]) and not removes_host_dir(c["none"])  # top: keep
    assert removes_host_dir(c["zero"]) and not removes_host_dir(c["one"])


@given(st.one_of(st.integers(-3, 5), st.text(max_size=3), st.booleans(), st.none(), st.floats()))
def test_cleanup_flag_values_are_accepted_exactly_as_they_are_read(value: object) -> None:
    from sharin.engine._files import cleanup_flag
    from sharin.model import Component
    from sharin.model._schema import check_value

    problem = check_value("task", "cleanupFlag", value, "t/cmp.wheel.json")
    read = cleanup_flag(Component({"cleanupFlag": value}, Path("t")))
    if problem is None:
        assert value in (0, 1, 2, "0", "1", "2", "", None) and not isinstance(value, bool)
        assert read == (int(value) if value not in ("", None) else 2)  # type: ignore[call-overload]
    else:
        assert (problem.file, problem.field) == ("t/cmp.wheel.json", "cleanupFlag")
        assert "0 (remove" in problem.message and "1 (keep" in problem.message


def test_a_wrong_cleanup_flag_is_one_clear_problem(tmp_path: Path) -> None:
    import json

    import sharin

    p = sharin.new_project(tmp_path / "bad")
    sharin.add_task(p.root, "t", "true")
    f = p.root / "t" / "cmp.wheel.json"
    data = json.loads(f.read_text())
    data["cleanupFlag"] = 3
    f.write_text(json.dumps(data))
    [problem] = sharin.validate(sharin.open_project(p.root))
    assert (problem.file, problem.field) == ("t/cmp.wheel.json", "cleanupFlag")
    assert problem.message.endswith("not 3")
    with pytest.raises(sharin.SharinError, match=r"cleanupFlag"):
        sharin.set_property(p.root, "t", "cleanupFlag", "keep")


def test_validate_notes_where_wheel_reads_cleanup_flag_otherwise(tmp_path: Path) -> None:
    import sharin
    from sharin.model import wheel_notes

    p = sharin.new_project(tmp_path / "notes")
    root = p.root
    sharin.add_component(root, "workflow", "num", cleanupFlag=0)
    sharin.add_component(root, "workflow", "text", cleanupFlag="0")
    for name, parent, flag in (
        ("inherits", "num", 2),  # sharin removes, WHEEL keeps
        ("own_text", None, "0"),  # sharin removes, WHEEL keeps
        ("own_number", None, 0),  # both remove
        ("from_text", "text", 2),  # both remove
        ("kept", "num", 1),  # both keep
        ("here", "num", 2),  # on this machine: nothing to remove
    ):
        host = "localhost" if name == "here" else "hpc"
        sharin.add_task(root, name, "true", parent=parent, host=host, cleanupFlag=flag)
    notes = [n for n in wheel_notes(sharin.open_project(root)) if n.field == "cleanupFlag"]
    assert sorted(n.file for n in notes) == [
        "num/inherits/cmp.wheel.json",
        "own_text/cmp.wheel.json",
    ]
    assert all("sharin removes" in n.message and "WHEEL keeps" in n.message for n in notes)


# ------------------------------------------------------------------------ which edges stay there
def _host(name: str, host: str = "h", **raw: object) -> HostConfig:
    return HostConfig.from_json({"name": name, "host": host, "path": f"/w/{name}", **raw})


def test_hosts_share_files_by_label_address_or_shared_host() -> None:
    a = _host("a", user="u")
    assert same_host(a, a)
    assert same_host(a, _host("b", user="u"))  # same host, user and port
    assert not same_host(a, _host("b", user="v"))
    assert not same_host(a, _host("b", user="u", port=2222))
    assert not same_host(a, _host("b", "other", user="u"))
    assert same_host(a, _host("b", "other", sharedHost="a"))
    assert not same_host(_host("b", "other", sharedHost="a"), a)  # named by the consumer
    with pytest.raises(SharinError, match=r"remotehost.json \[b.sharedHost\]: must be a string"):
        _host("b", sharedHost=3)


def _edges(tmp_path: Path, consumers: dict[str, str], **producer: object) -> Component:
    import sharin

    p = sharin.new_project(tmp_path / "edges")
    root = p.root
    sharin.add_task(root, "make", "true", host="a", outputs=["o.txt", "p.txt"], **producer)
    for name, host in consumers.items():
        sharin.add_task(root, name, "true", host=host)
        sharin.connect_files(root, "make", "o.txt", name, "in.txt")
    sharin.connect_files(root, "make", "p.txt", next(iter(consumers)), "p.txt")
    return {c.rel: c for c in sharin.open_project(root).root_component.walk()}["make"]


@pytest.mark.parametrize(
    ("consumers", "producer", "left"),
    [
        ({"use": "a"}, {}, {"o.txt", "p.txt"}),
        ({"use": "a2"}, {}, {"o.txt", "p.txt"}),  # same address
        ({"use": "a", "other": "a2"}, {}, {"o.txt", "p.txt"}),
        ({"use": "a", "far": "b"}, {}, {"p.txt"}),  # one consumer elsewhere: it comes back
        ({"use": "a", "here": "localhost"}, {}, {"p.txt"}),
        ({"use": "a"}, {"cleanupFlag": 0}, set()),  # its directory goes: everything comes back
        ({"use": "a"}, {"cleanupFlag": "1"}, {"o.txt", "p.txt"}),
    ],
)
def test_an_output_stays_on_the_host_only_when_every_consumer_links_it_there(
    tmp_path: Path, consumers: dict[str, str], producer: dict[str, object], left: set[str]
) -> None:
    from sharin.engine._files import host_links, left_on_host

    hosts = {h.name: h for h in (_host("a"), _host("a2"), _host("b", "far-away"))}
    make = _edges(tmp_path, consumers, **producer)
    assert left_on_host(make, hosts) == left
    use = next(c for c in make.parent.children if c.name == "use")  # type: ignore[union-attr]
    links = host_links(use, make.directory.parent, use.directory, hosts, lambda k: f"/w/a/r/{k}")
    assert {k[2] for k in links} == left
    assert all(x.src_dir == "/w/a/r/make" for x in links.values())
    unknown = host_links(use, make.directory.parent, use.directory, hosts, lambda k: None)
    assert unknown == {}  # where the producer ran is not known: delivered from here


def test_a_link_kept_inside_the_task_never_leads_out_through_a_link_here(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "x").symlink_to("data/passwd")  # inside the task there
    root = _project_dir(tmp_path)
    (root / "t" / "data").symlink_to("/etc")  # but here "data" leads out of the project
    with pytest.raises(ExecutorError, match="'x'.*nothing was copied back"):
        copy_matching(job, ["x"], root / "t", [])
    assert not (root / "t" / "x").is_symlink()
