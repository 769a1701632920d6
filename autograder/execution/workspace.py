"""The submission's work folder on a size-limited tmpfs, so that the disk limit counts everything the notebook
holds there, files deleted while still open included (a tmpfs counts its pages, not the names it lists), and so that
those pages are memory charged to the submission's control group.

    folder = SizedWorkdir(workdir, limits)
    folder.mount()        # the folder's current contents (the public tests) move onto a fresh tmpfs of
                          # limits.max_workdir_bytes and limits.max_workdir_files inodes
    ... the sandbox runs with the folder bound at /submission ...
    folder.hand_back()    # every regular file and folder is copied back to an ordinary folder at the same path
                          # (owned by the grader; links, devices and pipes are left behind), the tmpfs is unmounted

Mounting needs root (the grader's usual case, see sandbox.py). Where it cannot mount, `mount()` returns False with
`why`, and the grader falls back to measuring the folder while the notebook runs (run.py's disk watch), which misses
deleted-but-open files: the caller says so.
"""
from __future__ import annotations

import ctypes
import functools
import os
import shutil
import stat
import tempfile
from pathlib import Path

from autograder.execution.limits import Limits

MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(path: Path, size: int, inodes: int) -> str:
    """'' when mounted, else why not."""
    options = f"size={size},nr_inodes={inodes},mode=0755".encode()
    if _libc().mount(b"labgrade", str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
        return os.strerror(ctypes.get_errno())
    return ""


def _umount(path: Path) -> None:
    if _libc().umount2(str(path).encode(), 0) != 0:
        _libc().umount2(str(path).encode(), MNT_DETACH)      # still busy: detach; freed when the last user goes


@functools.lru_cache(maxsize=1)
def mount_check() -> tuple[bool, str]:
    """Whether the grader can mount a tmpfs here (tried once on a scratch folder)."""
    if os.geteuid() != 0:
        return False, "the grader is not root, so it cannot mount a size-limited tmpfs for the work folder"
    scratch = Path(tempfile.mkdtemp(prefix="labgrade-mount-check-"))
    try:
        why = _mount_tmpfs(scratch, 1 << 20, 16)
        if why:
            return False, f"mounting a tmpfs failed ({why})"
        _umount(scratch)
        return True, ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_regular_tree(source: Path, target: Path, max_bytes: int, max_entries: int) -> int:
    """Copy the folders and regular files under `source` into the existing folder `target` (links, devices, pipes
    and sockets are skipped, nothing is followed); stops at max_bytes or max_entries. Returns the entries copied."""
    copied, size, stack = 0, 0, [(source, target)]
    while stack:
        here, there = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            if copied >= max_entries:
                return copied
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            destination = Path(there) / entry.name
            if stat.S_ISDIR(info.st_mode):
                destination.mkdir(exist_ok=True)
                stack.append((entry.path, destination))
                copied += 1
            elif stat.S_ISREG(info.st_mode) and size + info.st_size <= max_bytes:
                try:
                    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:
                    continue
                with os.fdopen(fd, "rb") as reader, open(destination, "wb") as writer:
                    size += _copy_bounded(reader, writer, max_bytes - size)
                copied += 1
    return copied


def _copy_bounded(reader, writer, left: int) -> int:
    written = 0
    while written < left:
        chunk = reader.read(min(1 << 20, left - written))
        if not chunk:
            break
        writer.write(chunk)
        written += len(chunk)
    return written


class SizedWorkdir:
    def __init__(self, workdir: Path, limits: Limits):
        self.workdir, self.limits = Path(workdir), limits
        self.mounted = False
        self.why = ""

    def mount(self) -> bool:
        ok, why = mount_check()
        if not ok:
            self.why = why
            return False
        self.workdir.mkdir(parents=True, exist_ok=True)
        stash = Path(tempfile.mkdtemp(prefix=f".{self.workdir.name}.seed-", dir=self.workdir.parent))
        try:
            os.rmdir(stash)
            os.rename(self.workdir, stash)
            self.workdir.mkdir()
            why = _mount_tmpfs(self.workdir, self.limits.max_workdir_bytes, self.limits.max_workdir_files)
            if why:
                self.workdir.rmdir()
                os.rename(stash, self.workdir)
                self.why = f"mounting a tmpfs on the work folder failed ({why})"
                return False
            self.mounted = True
            copy_regular_tree(stash, self.workdir, self.limits.max_workdir_bytes, self.limits.max_workdir_files)
        finally:
            shutil.rmtree(stash, ignore_errors=True)
        return True

    def hand_back(self) -> None:
        """Copy what the folder holds to an ordinary folder at the same path and unmount the tmpfs."""
        if not self.mounted:
            return
        kept = Path(tempfile.mkdtemp(prefix=f".{self.workdir.name}.kept-", dir=self.workdir.parent))
        try:
            copy_regular_tree(self.workdir, kept, self.limits.max_workdir_bytes, self.limits.max_workdir_files)
        finally:
            _umount(self.workdir)
            self.mounted = False
        try:
            self.workdir.rmdir()
        except OSError:                     # detached but still busy, or not empty: keep the copy beside it
            shutil.rmtree(self.workdir, ignore_errors=True)
        os.rename(kept, self.workdir)
        os.chmod(self.workdir, 0o755)
