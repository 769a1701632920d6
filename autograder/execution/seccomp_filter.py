"""The seccomp filter of every sandbox (bubblewrap's `--seccomp FD`): the system calls that namespaces do not cover,
refused with EPERM. Built with libseccomp's own Python bindings (Debian's python3-seccomp), never hand-written BPF.

Refused: ptrace and reading or writing another process's memory; the kernel keyring (keyctl, add_key, request_key);
bpf, perf_event_open, userfaultfd, io_uring; mount and the new mount API, umount, pivot_root, chroot; unshare, setns
and clone with a namespace flag (no new user namespace: bubblewrap's --disable-userns needs a user namespace around
the sandbox, which the grader running as root does not make); kexec, kernel modules, reboot, swap, acct, quotas,
the kernel log, open_by_handle_at. clone3 answers ENOSYS (its flags are behind a pointer a filter cannot read), so
the C library falls back to clone, whose flags are checked. System calls of another architecture (32-bit x86) kill
the process (libseccomp's default for a foreign architecture).

`filter_path()` writes the compiled filter once per grader process and returns its path. The Debian module is
imported from the system's dist-packages (the venv's Python is the same 3.11 ABI); when it does not import there,
the filter is compiled by the system's python3 running this file. `available()` says why there is no filter when
neither works (python3-seccomp missing): the run then says that the seccomp filter is not applied.
"""
from __future__ import annotations

import errno
import functools
import os
import subprocess
import sys
import tempfile

DIST_PACKAGES = "/usr/lib/python3/dist-packages"
SYSTEM_PYTHON = "/usr/bin/python3"

REFUSED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "mount_setattr",
    "unshare", "setns",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "syslog", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
)
# CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET (CLONE_NEWTIME
# overlaps clone's exit-signal byte: unshare and clone3 only, both refused)
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


def build(seccomp) -> bytes:
    """The filter as BPF bytes, from the `seccomp` module given."""
    syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in REFUSED:
        try:
            syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            pass                     # not a system call of this architecture or libseccomp version
    syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in NAMESPACE_FLAGS:
        syscall_filter.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    with tempfile.TemporaryFile() as handle:
        syscall_filter.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def _import_seccomp():
    try:
        import seccomp  # type: ignore
        return seccomp
    except ImportError:
        pass
    if not os.path.isdir(DIST_PACKAGES):
        return None
    sys.path.append(DIST_PACKAGES)
    try:
        import seccomp  # type: ignore
        return seccomp
    except ImportError:
        return None
    finally:
        sys.path.remove(DIST_PACKAGES)


@functools.lru_cache(maxsize=1)
def compiled() -> tuple[bytes | None, str]:
    """(the filter's BPF, "") or (None, why there is none)."""
    module = _import_seccomp()
    if module is not None:
        try:
            return build(module), ""
        except Exception as error:  # libseccomp refusing the filter: reported, not fatal
            return None, f"libseccomp could not build the filter ({error})"
    if not os.path.exists(SYSTEM_PYTHON):
        return None, "python3-seccomp (libseccomp's Python bindings) is not installed"
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-I", __file__], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"the system python3 could not build the seccomp filter ({error})"
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return None, f"python3-seccomp (libseccomp's Python bindings) is not installed ({detail[0][:200]})"
    return done.stdout, ""


@functools.lru_cache(maxsize=1)
def filter_path() -> str | None:
    """A file holding the filter (0600, this grader process's), or None when there is no filter."""
    data, _ = compiled()
    if data is None:
        return None
    handle, path = tempfile.mkstemp(prefix="labgrade-seccomp-", suffix=".bpf")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    import atexit

    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


def available() -> tuple[bool, str]:
    data, why = compiled()
    return data is not None, why


if __name__ == "__main__":      # run by the system python3 when the venv cannot import the Debian module
    import seccomp  # type: ignore  # noqa: E402

    sys.stdout.buffer.write(build(seccomp))
