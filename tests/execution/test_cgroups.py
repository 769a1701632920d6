"""execution/cgroups.py: the hierarchy chosen and what a group is given, on a cgroup v2 tree made of plain files (the
machines here have v1 memory and pids writable and a v2 mount without them, so v2 is exercised this way), and on
the machine's own hierarchy when it has one."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from autograder.execution import cgroups
from autograder.execution.limits import MiB


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids io\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "cgroup.procs").write_text("")
    monkeypatch.setattr(cgroups, "_mounts", lambda: [(str(root), "/", "cgroup2", {"rw"})])
    monkeypatch.setattr(cgroups, "_own_groups", lambda: {"": "/"})
    monkeypatch.delenv("LABGRADE_NO_CGROUPS", raising=False)
    cgroups.support.cache_clear()
    yield root
    cgroups.support.cache_clear()


def test_v2_is_preferred_and_a_group_gets_memory_without_swap_and_pids(fake_v2):
    found = cgroups.support()
    assert found.version == "v2" and found.usable and found.unenforced() == []
    assert "+memory +pids" in (fake_v2 / "cgroup.subtree_control").read_text()
    parent = found.memory
    assert parent.parent == fake_v2 and "+memory +pids" in (parent / "cgroup.subtree_control").read_text()
    # a real cgroupfs creates these files itself
    original_mkdir = Path.mkdir

    def mkdir_with_files(self, *args, **kwargs):
        original_mkdir(self, *args, **kwargs)
        for name in ("memory.swap.max", "cgroup.procs"):
            (self / name).write_text("")

    Path.mkdir = mkdir_with_files
    try:
        group = cgroups.Group.create("run", memory_bytes=512 * MiB, max_tasks=320)
    finally:
        Path.mkdir = original_mkdir
    assert group is not None and group.procs_files == [str(group.folders[0] / "cgroup.procs")]
    folder = group.folders[0]
    assert (folder / "memory.max").read_text() == str(512 * MiB)
    assert (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "pids.max").read_text() == "320"
    (folder / "memory.current").write_text(str(500 * MiB))
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n")
    (folder / "memory.stat").write_text(f"anon {400 * MiB}\nfile 0\nshmem {90 * MiB}\n")
    state = group.memory()
    assert state["oom_kills"] == 1 and state["at_limit_events"] == 7 and state["unreclaimable"] == 490 * MiB


def test_v2_without_the_controllers_is_not_used(fake_v2):
    (fake_v2 / "cgroup.controllers").write_text("hugetlb\n")
    found = cgroups.support()
    assert found.version != "v2"


def test_no_hierarchy_says_which_limits_are_not_enforced(monkeypatch):
    monkeypatch.setenv("LABGRADE_NO_CGROUPS", "1")
    cgroups.support.cache_clear()
    try:
        found = cgroups.support()
        assert not found.usable and cgroups.Group.create("run", memory_bytes=MiB, max_tasks=10) is None
        lines = found.unenforced()
        assert any(line.startswith("memory for the whole submission") for line in lines)
        assert any(line.startswith("processes and threads") for line in lines)
    finally:
        cgroups.support.cache_clear()


def test_the_machines_hierarchy_holds_and_kills_a_group():
    cgroups.support.cache_clear()
    if not cgroups.support().usable:
        pytest.skip(f"no usable control groups here: {cgroups.support().why}")
    group = cgroups.Group.create("test", memory_bytes=256 * MiB, max_tasks=16)
    assert group is not None
    try:
        pid = os.fork()
        if pid == 0:                                       # joins the group like sandbox's wrapper, then sleeps
            for path in group.procs_files:
                with open(path, "w") as handle:
                    handle.write(str(os.getpid()))
            os.execvp("sleep", ["sleep", "30"])
        for _ in range(200):
            if pid in group.pids():
                break
            time.sleep(0.02)
        assert group.kill() >= 1
        os.waitpid(pid, 0)
        assert group.pids() == set()
    finally:
        group.remove()
    assert not any(folder.exists() for folder in group.folders)
