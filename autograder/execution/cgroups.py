"""Control groups: one per sandboxed process tree (a submission's notebook run, its probe server), so that memory
(every process together, with the pages of its tmpfs /tmp, /dev/shm and work folder, and no swap) and the number of
processes and threads are limited for the submission as a whole, and so that the grader finds and kills every
process it started, whatever each one did to its environment, session or parentage.

Which hierarchy (`support()`, decided once per grader process):
- cgroup v2 when a cgroup2 mount offers the `memory` and `pids` controllers to the grader's own group and they can
  be enabled for a child (the grader's group must not itself hold other processes: the v2 rule);
- else cgroup v1, the `memory` and `pids` hierarchies (each used when writable);
- else none: `Support.unenforced()` says exactly which limits cannot be enforced, and the caller says it in
  grading.log, on stderr and in the class summary. Finding processes then falls back to the run's token in their
  environment (sandbox.processes_with_token).

Layout: `<the grader's own group>/labgrade-<grader pid>/<name>` in each hierarchy used; the parent is removed when
the grader exits, and parents of graders that are no longer running are removed when the next one starts.
Processes join a group before they exec anything (sandbox.WRAPPER writes its own pid into `procs_files`), so every
descendant is inside; no sandboxed process can leave it (cgroupfs is not mounted in the sandbox).
Needs root, or a delegated hierarchy the grader's user may write.
"""
from __future__ import annotations

import atexit
import errno
import functools
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT_PREFIX = "labgrade-"
KILL_ROUNDS = 100              # SIGKILL sweeps of a group before giving up (a fork bomb can fork while being killed)
UNLIMITED_V1 = 9223372036854771712


def _read(path: Path) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: Path, value) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root inside the hierarchy, fstype, super options) of the cgroup mounts, from mountinfo."""
    found = []
    try:
        lines = _read(Path("/proc/self/mountinfo")).splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mount_point = fields[4].replace("\\040", " ")
        found.append((mount_point, fields[3], tail[0], set(tail[2].split(","))))
    return found


def _own_groups() -> dict[str, str]:
    """controller (or "" for the v2 unified hierarchy) -> this process's group path, from /proc/self/cgroup."""
    groups = {}
    try:
        lines = _read(Path("/proc/self/cgroup")).splitlines()
    except OSError:
        return groups
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            groups[""] = parts[2]
        for controller in parts[1].split(","):
            if controller:
                groups[controller] = parts[2]
    return groups


def _own_dir(mount_point: str, mount_root: str, group: str) -> Path | None:
    """The folder of this process's group under a mount (None when the mount does not show it)."""
    relative = os.path.relpath(group, mount_root) if mount_root != "/" else group.lstrip("/")
    if relative.startswith(".."):
        return None
    path = Path(mount_point) / relative if relative not in ("", ".") else Path(mount_point)
    return path if path.is_dir() else None


@dataclass(frozen=True)
class Support:
    """What this machine lets the grader enforce with control groups."""
    version: str                  # "v2", "v1" or "" (none)
    memory: Path | None = None    # the folder under which groups are made (v2: the one folder for both)
    pids: Path | None = None
    swap: bool = False            # swap is limited too (v1 memsw / v2 swap.max); without swap on the machine, moot
    why: str = ""                 # why a hierarchy or controller is missing

    def unenforced(self) -> list[str]:
        """One line per limit that cannot be enforced here, for the log, stderr and the class summary."""
        lines = []
        if self.memory is None:
            lines.append("memory for the whole submission (all its processes, its /tmp, /dev/shm and folder "
                         "together): not enforced, only RLIMIT_DATA per process, so several processes or tmpfs "
                         "pages can hold more than the limit")
        elif not self.swap and _swap_total() > 0:
            lines.append("swap: not limited (the memory hierarchy does not account swap), so a submission may be "
                         "pushed to swap instead of being stopped at its memory limit")
        if self.pids is None:
            lines.append("processes and threads for the whole submission: not enforced, only RLIMIT_NPROC per uid")
        if self.memory is None and self.pids is None:
            lines.append("finding a submission's processes: by a token in their environment instead of a control "
                         "group, so a process that clears its environment can outlive the submission")
        if lines and self.why:
            lines[-1] += f" ({self.why})"
        return lines

    @property
    def usable(self) -> bool:
        return self.memory is not None or self.pids is not None


def _swap_total() -> int:
    try:
        for line in _read(Path("/proc/meminfo")).splitlines():
            if line.startswith("SwapTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _try_parent(base: Path) -> Path | None:
    """Create this grader's parent folder under `base` (None when that is not allowed)."""
    parent = base / f"{PARENT_PREFIX}{os.getpid()}"
    try:
        parent.mkdir(exist_ok=True)
    except OSError:
        return None
    _remove_stale(base)
    return parent


def _enable(folder: Path) -> None:
    enabled = set(_read(folder / "cgroup.subtree_control").split())
    if not {"memory", "pids"} <= enabled:
        _write(folder / "cgroup.subtree_control", "+memory +pids")


def _v2_support(mounts, groups) -> tuple[Path | None, str]:
    """The v2 parent folder with memory and pids enabled for its children, or (None, why not)."""
    v2 = [m for m in mounts if m[2] == "cgroup2"]
    if not v2 or "" not in groups:
        return None, "no cgroup2 mount"
    own = _own_dir(v2[0][0], v2[0][1], groups[""])
    if own is None:
        return None, "the grader's cgroup2 group is not visible"
    try:
        offered = set(_read(own / "cgroup.controllers").split())
    except OSError as error:
        return None, f"cgroup2: {error.strerror}"
    if not {"memory", "pids"} <= offered:
        return None, f"cgroup2 offers {' '.join(sorted(offered)) or 'no controller'} here, not memory and pids"
    try:
        _enable(own)
    except OSError as error:
        if error.errno != errno.EBUSY:
            return None, f"cgroup2: cannot enable memory and pids for the grader's children: {error.strerror}"
        # v2 allows controllers for children only in a group without processes: when the grader is alone in its
        # group (e.g. `systemd-run --scope -p Delegate=yes`), it moves itself into a leaf of it first
        if _pids_in(own) - {os.getpid()}:
            return None, ("cgroup2: cannot enable memory and pids for the grader's children: its group holds other "
                          "processes (run the grader in a delegated group of its own, e.g. systemd-run --scope -p "
                          "Delegate=yes)")
        try:
            leaf = own / f"{PARENT_PREFIX}self-{os.getpid()}"
            leaf.mkdir(exist_ok=True)
            _write(leaf / "cgroup.procs", os.getpid())
            _enable(own)
        except OSError as retry:
            return None, f"cgroup2: cannot enable memory and pids for the grader's children: {retry.strerror}"
    parent = _try_parent(own)
    if parent is None:
        return None, "cgroup2: the grader may not create groups"
    try:
        _write(parent / "cgroup.subtree_control", "+memory +pids")
    except OSError as error:
        _rmdir(parent)
        return None, f"cgroup2: {error.strerror}"
    return parent, ""


def _v1_parent(mounts, groups, controller: str) -> tuple[Path | None, str]:
    for mount_point, root, fstype, options in mounts:
        if fstype == "cgroup" and controller in options and controller in groups:
            own = _own_dir(mount_point, root, groups[controller])
            if own is None:
                return None, f"the grader's {controller} group is not visible"
            parent = _try_parent(own)
            return (parent, "") if parent is not None else (None, f"cgroup v1 {controller}: not writable")
    return None, f"no cgroup v1 {controller} hierarchy"


@functools.lru_cache(maxsize=1)
def support() -> Support:
    """What can be enforced here (decided once; the parent folders are removed when the grader exits)."""
    if os.environ.get("LABGRADE_NO_CGROUPS"):       # to try the fallback on a machine that has them
        return Support("", why="LABGRADE_NO_CGROUPS is set")
    mounts, groups = _mounts(), _own_groups()
    v2_parent, v2_why = _v2_support(mounts, groups)
    if v2_parent is not None:
        atexit.register(_cleanup_parents, [v2_parent])
        return Support("v2", memory=v2_parent, pids=v2_parent, swap=True)
    memory, memory_why = _v1_parent(mounts, groups, "memory")
    pids, pids_why = _v1_parent(mounts, groups, "pids")
    if memory is None and pids is None:
        return Support("", why="; ".join(w for w in (v2_why, memory_why, pids_why) if w))
    atexit.register(_cleanup_parents, [p for p in (memory, pids) if p is not None])
    swap = memory is not None and (memory.parent / "memory.memsw.limit_in_bytes").exists()
    return Support("v1", memory=memory, pids=pids, swap=swap, why="; ".join(w for w in (memory_why, pids_why) if w))


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except OSError:
        return False


def _remove_stale(base: Path) -> None:
    """Parents (and their groups) left by graders that are no longer running."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(PARENT_PREFIX) or not entry.name[len(PARENT_PREFIX):].isdigit():
            continue
        pid = int(entry.name[len(PARENT_PREFIX):])
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        for child in entry.iterdir() if entry.is_dir() else []:
            if child.is_dir():
                _kill_dir(child)
                _rmdir(child)
        _rmdir(entry)


def _cleanup_parents(parents: list[Path]) -> None:
    for parent in parents:
        try:
            children = [child for child in parent.iterdir() if child.is_dir()]
        except OSError:
            continue
        for child in children:
            _kill_dir(child)
            _rmdir(child)
        _rmdir(parent)


def _pids_in(directory: Path) -> set[int]:
    try:
        return {int(line) for line in _read(directory / "cgroup.procs").split()}
    except (OSError, ValueError):
        return set()


def _kill_dir(directory: Path) -> int:
    """SIGKILL every process of a group folder until it is empty; returns how many were signalled."""
    killed = 0
    kill_file = directory / "cgroup.kill"
    for _ in range(KILL_ROUNDS):
        pids = _pids_in(directory) - {os.getpid()}
        if not pids:
            return killed
        if kill_file.exists():
            try:
                _write(kill_file, 1)
                killed += len(pids)
                time.sleep(0.02)
                continue
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return killed


_counter = 0
_counter_lock = threading.Lock()


@dataclass
class Group:
    """One sandboxed process tree's control group (in each hierarchy used)."""
    name: str
    folders: list[Path] = field(default_factory=list)    # one per hierarchy (v2: one)
    version: str = ""
    memory_folder: Path | None = None
    pids_folder: Path | None = None
    memory_limit: int = 0

    @classmethod
    def create(cls, name: str, *, memory_bytes: int, max_tasks: int) -> "Group | None":
        """A new group limited to `memory_bytes` (no swap) and `max_tasks` processes and threads; None when this
        machine has no usable hierarchy (Support.unenforced() says what that leaves unenforced)."""
        found = support()
        if not found.usable:
            return None
        global _counter
        with _counter_lock:
            _counter += 1
            unique = f"{name}-{_counter}"
        group = cls(unique, version=found.version, memory_limit=memory_bytes)
        try:
            if found.version == "v2":
                folder = found.memory / unique
                folder.mkdir()
                group.folders, group.memory_folder, group.pids_folder = [folder], folder, folder
                _write(folder / "memory.max", memory_bytes)
                if (folder / "memory.swap.max").exists():
                    _write(folder / "memory.swap.max", 0)
                _write(folder / "pids.max", max_tasks)
            else:
                if found.memory is not None:
                    folder = found.memory / unique
                    folder.mkdir()
                    group.folders.append(folder)
                    group.memory_folder = folder
                    _write(folder / "memory.limit_in_bytes", memory_bytes)
                    if (folder / "memory.memsw.limit_in_bytes").exists():
                        _write(folder / "memory.memsw.limit_in_bytes", memory_bytes)
                    try:
                        _write(folder / "memory.swappiness", 0)
                    except OSError:
                        pass
                if found.pids is not None:
                    folder = found.pids / unique
                    folder.mkdir()
                    group.folders.append(folder)
                    group.pids_folder = folder
                    _write(folder / "pids.max", max_tasks)
        except OSError as error:
            log.warning("control group %s could not be set up (%s); its limits fall back to rlimits", unique, error)
            group.remove()
            return None
        return group

    @property
    def procs_files(self) -> list[str]:
        """Where a process writes its pid to join the group (every hierarchy)."""
        return [str(folder / "cgroup.procs") for folder in self.folders]

    def pids(self) -> set[int]:
        """Every process in the group now."""
        found: set[int] = set()
        for folder in self.folders:
            found |= _pids_in(folder)
        return found

    def kill(self) -> int:
        """SIGKILL every process of the group (looping until none is left); returns how many were signalled."""
        signalled: set[int] = set()
        for _ in range(KILL_ROUNDS):
            pids = self.pids() - {os.getpid()}
            if not pids:
                break
            kill_file = self.folders[0] / "cgroup.kill"
            try:
                if self.version == "v2" and kill_file.exists():
                    _write(kill_file, 1)
                    signalled |= pids
                    time.sleep(0.02)
                    continue
            except OSError:
                pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    signalled.add(pid)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)
        return len(signalled)

    def remove(self) -> None:
        """Kill what is left and delete the group's folders."""
        for folder in self.folders:
            _kill_dir(folder)
            for _ in range(50):
                if _rmdir(folder) or not folder.exists():
                    break
                time.sleep(0.02)

    # --- what the memory controller saw ------------------------------------------------------------------------------

    def _stat(self) -> dict[str, int]:
        if self.memory_folder is None:
            return {}
        try:
            lines = _read(self.memory_folder / "memory.stat").splitlines()
        except OSError:
            return {}
        stat = {}
        for line in lines:
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                stat[key] = int(value)
        return stat

    def memory(self) -> dict:
        """{"usage", "limit", "unreclaimable" (anonymous + tmpfs pages), "at_limit_events", "oom_kills",
        "pressure" (v2: % of the last 10 s all tasks were stalled on memory), "peak"}; {} without the controller."""
        if self.memory_folder is None:
            return {}
        folder, stat = self.memory_folder, self._stat()
        state = {"limit": self.memory_limit, "pressure": 0.0}
        try:
            if self.version == "v2":
                state["usage"] = int(_read(folder / "memory.current"))
                events = dict(line.split() for line in _read(folder / "memory.events").splitlines() if line.strip())
                state["at_limit_events"] = int(events.get("max", 0))
                state["oom_kills"] = int(events.get("oom_kill", 0))
                state["unreclaimable"] = stat.get("anon", 0) + stat.get("shmem", 0)
                peak = folder / "memory.peak"
                state["peak"] = int(_read(peak)) if peak.exists() else state["usage"]
                pressure = folder / "memory.pressure"
                if pressure.exists():
                    for line in _read(pressure).splitlines():
                        if line.startswith("full"):
                            state["pressure"] = float(line.split()[1].split("=")[1])
            else:
                state["usage"] = int(_read(folder / "memory.usage_in_bytes"))
                state["at_limit_events"] = int(_read(folder / "memory.failcnt"))
                control = dict(line.split() for line in _read(folder / "memory.oom_control").splitlines()
                               if line.strip())
                state["oom_kills"] = int(control.get("oom_kill", 0))
                state["unreclaimable"] = stat.get("total_rss", stat.get("rss", 0)) + stat.get(
                    "total_shmem", stat.get("shmem", 0))
                state["peak"] = int(_read(folder / "memory.max_usage_in_bytes"))
        except (OSError, ValueError):
            return {}
        return state
