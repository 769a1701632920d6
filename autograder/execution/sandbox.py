"""Builds the command that runs one sandboxed process tree (a submission's runner and kernel, or its probe server):
bubblewrap, a control group, a seccomp filter and resource limits; or resource limits (and the control group) only.

Mode "bwrap" (the default when it works):
- namespaces: new network (loopback only, so the runner's ZMQ connection to the kernel still works), pid, ipc, uts
  and cgroup namespaces; `--die-with-parent`; `--new-session` (no TIOCSTI into the grader's terminal);
- filesystem: read-only /usr (and the /bin, /lib* links), a few files of /etc, the venv (at /venv) and the Python
  installation it points to, the data cache (at /data), the runner's directory (at /grader: the runner script, the
  graded notebook and its config, readable by the runner's uid only); writable: the submission's work folder (at
  /submission; a size-limited tmpfs, see execution/workspace.py, or a private tmpfs for the probe server) and a
  private size-limited tmpfs /tmp and /dev/shm; fresh /proc and /dev. No view of the project tree, the rubric, the
  grades, other submissions or cgroupfs;
- identity: when the grader runs as root, bwrap runs without a user namespace and `setpriv` drops to a fresh
  unprivileged uid with no_new_privs, so RLIMIT_NPROC counts (root is exempt from it) and the submission cannot write
  anything root owns. The notebook's runner keeps CAP_SETUID, CAP_SETGID and CAP_KILL (nothing else) to start the
  kernel as a SECOND fresh uid without any capability (runner.py `--kernel`) and to interrupt or kill it: the kernel
  cannot read the runner's files or signal it. Not root: bwrap makes a user namespace, the uid stays the grader's
  (one uid for runner and kernel), `--disable-userns` forbids nested user namespaces, and RLIMIT_NPROC is set above
  the user's current process count;
- system calls: the seccomp filter of execution/seccomp_filter.py (no ptrace, keyring, bpf, perf, userfaultfd,
  io_uring, mount, unshare, setns, kexec, namespaces through clone).
Mode "none": the same resource limits and control group, nothing else; the description says so loudly.
Both: a tiny Python wrapper, run by the grader's own Python before anything of the sandbox, joins the control group
(execution/cgroups.py: memory, no swap, processes and threads for the whole tree), sets the rlimits (data size per
process, processes per uid, file size, CPU, open files, no core dumps) and hands bwrap the seccomp filter, then execs
the rest of the command: everything the tree starts is inside the group and under the limits.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.execution import seccomp_filter
from autograder.execution.cgroups import Group
from autograder.execution.limits import Limits

log = logging.getLogger(__name__)

SANDBOX_WORKDIR = "/submission"
SANDBOX_DATA = "/data"
SANDBOX_VENV = "/venv"
SANDBOX_RUNNER = "/grader"
SANDBOX_TMP = "/tmp"
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "hosts",
             "localtime", "mime.types", "fonts")
TOP_LEVEL_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
SANDBOX_UID_RANGE = (200_000, 299_999)
RUNNER_NAME = "runner.py"      # the runner script (autograder/execution/runner.py), as copied into the sandbox

SECCOMP_FD = 10                # the descriptor bwrap reads the seccomp filter from (`--seccomp 10`)
RUNNER_CAPS = ("setuid", "setgid", "kill")     # what the notebook's runner keeps to start and stop its kernel

# Joins the control group (argv[3]: the cgroup.procs files, comma separated, or "-"), sets the resource limits
# (argv[1] names, argv[2] values), opens the seccomp filter on SECCOMP_FD (argv[4]: its path, or "-"), then execs the
# rest of argv. Run by the grader's own Python, outside the sandbox, before anything the submission controls.
RLIMIT_WRAPPER = (
    "import os, resource, sys\n"
    "for path in (sys.argv[3].split(',') if sys.argv[3] != '-' else []):\n"
    "    with open(path, 'w') as handle:\n"
    "        handle.write(str(os.getpid()))\n"
    "for name, value in zip(sys.argv[1].split(','), sys.argv[2].split(',')):\n"
    "    resource.setrlimit(getattr(resource, name), (int(value), int(value)))\n"
    "if sys.argv[4] != '-':\n"
    f"    os.dup2(os.open(sys.argv[4], os.O_RDONLY), {SECCOMP_FD}, inheritable=True)\n"
    "os.execvp(sys.argv[5], sys.argv[5:])\n"
)


@dataclass(frozen=True)
class Paths:
    """Where the runner sees things: inside the sandbox (bwrap) or the host paths themselves (none)."""
    workdir: str
    data_dir: str | None
    python: str
    runner_dir: str
    tmp: str


def inside_paths(mode: str, *, workdir: Path, data_dir: Path | None, venv: Path, runner_dir: Path) -> Paths:
    if mode == "bwrap":
        return Paths(SANDBOX_WORKDIR, SANDBOX_DATA if data_dir else None, f"{SANDBOX_VENV}/bin/python",
                     SANDBOX_RUNNER, SANDBOX_TMP)
    return Paths(str(workdir), str(data_dir) if data_dir else None, str(Path(venv) / "bin" / "python"),
                 str(runner_dir), str(Path(runner_dir) / "tmp"))


def python_installation(venv: Path) -> Path | None:
    """The prefix of the Python the venv was made from (its bin/python symlinks point there)."""
    cfg = Path(venv) / "pyvenv.cfg"
    if not cfg.exists():
        return None
    for line in cfg.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip()).resolve().parent
    return None


_allocated: set[int] = set()
_allocated_lock = threading.Lock()


def allocate_uid() -> int:
    """A uid no other sandbox of this grader has had (random in a range no real account uses)."""
    with _allocated_lock:
        while True:
            uid = random.randint(*SANDBOX_UID_RANGE)
            if uid not in _allocated:
                _allocated.add(uid)
                return uid


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def rlimit_values(limits: Limits, *, drops_to_own_uid: bool) -> dict[str, int]:
    nproc = limits.max_processes if drops_to_own_uid else _user_process_count() + limits.max_processes
    return {
        "RLIMIT_DATA": limits.memory_bytes,
        "RLIMIT_NPROC": nproc,
        "RLIMIT_FSIZE": limits.max_file_bytes,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_NOFILE": limits.max_open_files,
        "RLIMIT_CORE": 0,
    }


def rlimit_prefix(values: dict[str, int], group: Group | None = None, seccomp: str | None = None) -> list[str]:
    """The wrapper's command line: join `group`, set the rlimits `values`, open the `seccomp` filter file."""
    procs = ",".join(group.procs_files) if group is not None else "-"
    return [sys.executable, "-c", RLIMIT_WRAPPER, ",".join(values), ",".join(str(v) for v in values.values()),
            procs, seccomp or "-"]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in TOP_LEVEL_SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]  # directories bwrap creates are 0700 unless told otherwise
    for name in ETC_FILES:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def _namespace_args(as_root: bool) -> list[str]:
    # Root without a user namespace so setpriv can switch to a real unprivileged uid; others need a user namespace.
    if as_root:
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all"]


@functools.lru_cache(maxsize=None)
def bwrap_version() -> tuple[int, ...]:
    try:
        done = subprocess.run([shutil.which("bwrap") or "bwrap", "--version"], capture_output=True, text=True,
                              timeout=20)
        return tuple(int(part) for part in done.stdout.split()[-1].split(".")[:3])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return ()


def _setpriv_args(setpriv: str, uid: int, keep_caps: tuple[str, ...]) -> list[str]:
    caps = "".join(f",+{cap}" for cap in keep_caps)
    args = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", f"--inh-caps=-all{caps}",
            f"--bounding-set=-all{caps}", "--no-new-privs"]
    if keep_caps:
        args.insert(-1, "--ambient-caps=" + ",".join(f"+{cap}" for cap in keep_caps))
    return args


def build_command(argv: list[str], *, workdir: Path | None, data_dir: Path | None, venv: Path, mode: str,
                  limits: Limits, runner_dir: Path, uid: int | None = None, kernel_uid: int | None = None,
                  group: Group | None = None, private_workdir: bool = False) -> tuple[list[str], str]:
    """The full command line (the wrapper, then bwrap if mode is "bwrap", then argv) and a description of it.

    argv must use the paths of `inside_paths(mode, ...)`. `uid`: the uid to drop to (bwrap run as root only);
    allocated when None. `kernel_uid`: the runner starts its kernel as this second uid (it keeps the capabilities to
    do so). `group`: the control group the whole tree joins (cgroups.Group.create). `private_workdir`: /submission is
    a private tmpfs of limits.max_workdir_bytes instead of `workdir` (the probe server, which reads nothing back)."""
    as_root = os.geteuid() == 0
    limited = _group_description(group)
    if mode == "none":
        values = rlimit_values(limits, drops_to_own_uid=False)
        description = ("none: NO SANDBOX, resource limits only (memory, processes, file size, CPU); the submission "
                       "can use the network, read the project and write wherever the grader can"
                       + ("; RLIMIT_NPROC does not apply to root" if as_root else "") + limited)
        return rlimit_prefix(values, group) + list(argv), description
    if mode != "bwrap":
        raise ValueError(f"sandbox mode must be 'bwrap' or 'none', not {mode!r}")

    bwrap = shutil.which("bwrap") or "bwrap"
    cmd = [bwrap, *_namespace_args(as_root), "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if not as_root and bwrap_version() >= (0, 8):
        cmd += ["--unshare-user", "--disable-userns"]
    cmd += _system_binds()
    python_home = python_installation(venv)
    if python_home is not None and not str(python_home).startswith("/usr/"):
        # Parents bwrap creates copy the host's modes (/root is 0700): open them so the dropped uid can traverse.
        for parent in reversed(python_home.parents[:-1]):
            cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", str(python_home), str(python_home)]
    cmd += ["--ro-bind", str(Path(venv).resolve()), SANDBOX_VENV]
    if data_dir is not None:
        cmd += ["--ro-bind", str(Path(data_dir).resolve()), SANDBOX_DATA]
    cmd += ["--ro-bind", str(Path(runner_dir).resolve()), SANDBOX_RUNNER]
    if private_workdir or workdir is None:
        cmd += ["--perms", "1777", "--size", str(limits.max_workdir_bytes), "--tmpfs", SANDBOX_WORKDIR]
    else:
        cmd += ["--bind", str(Path(workdir).resolve()), SANDBOX_WORKDIR]
    cmd += ["--chdir", SANDBOX_WORKDIR, "--proc", "/proc", "--dev", "/dev"]
    cmd += ["--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm"]
    cmd += ["--perms", "1777", "--size", str(limits.tmpfs_bytes), "--tmpfs", SANDBOX_TMP]
    seccomp = seccomp_filter.filter_path()
    if seccomp is not None:
        cmd += ["--seccomp", str(SECCOMP_FD)]
        filtered = ", seccomp filter"
    else:
        filtered = f", NO seccomp filter ({seccomp_filter.available()[1]})"

    setpriv = shutil.which("setpriv")
    drops_uid = as_root and setpriv is not None
    if drops_uid:
        uid = allocate_uid() if uid is None else uid
        keep = RUNNER_CAPS if kernel_uid is not None else ()
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        cmd += ["--cap-add", "CAP_KILL"] if kernel_uid is not None else []
        cmd += ["--", *_setpriv_args(setpriv, uid, keep), "--", *argv]
        who = f"uid {uid}" + (f", its kernel uid {kernel_uid}" if kernel_uid is not None else "")
    else:
        cmd += ["--", *argv]
        who = "the grader's uid" + (" (root, capabilities dropped; setpriv missing so RLIMIT_NPROC does not apply)"
                                    if as_root else ", no nested user namespaces")
    values = rlimit_values(limits, drops_to_own_uid=drops_uid)
    description = (f"bwrap: no network, private /tmp, read-only system and venv, only the workdir writable, {who}"
                   f"{filtered}{limited}")
    return rlimit_prefix(values, group, seccomp) + cmd, description


def _group_description(group: Group | None) -> str:
    if group is None:
        return "; no control group: memory and processes limited per process only"
    parts = []
    if group.memory_folder is not None:
        parts.append(f"{group.memory_limit / (1 << 30):g} GiB of memory in all, no swap")
    if group.pids_folder is not None:
        parts.append("processes and threads counted together")
    return f"; control group {group.version} ({', '.join(parts)})"


@functools.lru_cache(maxsize=None)
def bwrap_check() -> tuple[bool, str]:
    """Whether bwrap can make this sandbox here; (False, why) when it can't."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed"
    cmd = [bwrap, *_namespace_args(os.geteuid() == 0), "--die-with-parent", "--ro-bind", "/", "/", "--proc",
           "/proc", "--dev", "/dev", "true"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bwrap could not run: {error}"
    if done.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {done.stderr.strip()[:300]}"
    return True, "bwrap works"


def resolve_mode(requested: str) -> tuple[str, str]:
    """("bwrap"|"none", why) for a requested mode "auto", "bwrap" or "none"."""
    if requested == "none":
        return "none", "sandbox disabled on request"
    ok, why = bwrap_check()
    if requested == "bwrap":
        if not ok:
            raise RuntimeError(f"sandbox 'bwrap' requested but unusable: {why}")
        return "bwrap", why
    if requested != "auto":
        raise ValueError(f"sandbox must be 'auto', 'bwrap' or 'none', not {requested!r}")
    if ok:
        return "bwrap", why
    log.warning("running submissions WITHOUT a sandbox (resource limits only): %s", why)
    return "none", why


def processes_with_token(token: str) -> list[int]:
    """Pids of live processes whose environment holds LABGRADER_RUN=token (all a run started, unless one cleared
    its environment)."""
    needle = f"LABGRADER_RUN={token}".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...] (field 3 onwards); [] when gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()
    except OSError:
        return []


def _runner_and_ancestors(pids: list[int]) -> set[int]:
    """The runner (the FIRST process started running the runner script, bwrap's own command line aside: nothing the
    submission starts can be older, whatever it calls itself) and its ancestors up to the grader (bwrap)."""
    runners = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            if os.path.basename(argv[0]) != b"bwrap" and any(arg.endswith(RUNNER_NAME.encode()) for arg in argv):
                runners.append((int(_stat_fields(pid)[19]), pid))  # field 22: start time
        except (OSError, IndexError, ValueError):
            continue
    if not runners:
        return set()
    keep, pid = set(), min(runners)[1]
    while pid > 1 and pid != os.getpid() and pid not in keep:
        keep.add(pid)
        fields = _stat_fields(pid)
        pid = int(fields[1]) if len(fields) > 1 else 0
    return keep


def process_uid(pid: int) -> int | None:
    """The real uid of a process (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def tree_pids(token: str, group: Group | None = None) -> list[int]:
    """Every live process of one sandboxed tree: its control group's, else (no group) those carrying its token."""
    if group is not None:
        return sorted(group.pids() - {os.getpid()})
    return processes_with_token(token)


def kernel_pids(token: str, group: Group | None = None, kernel_uid: int | None = None) -> list[int]:
    """The kernel and everything the submission started: the processes of the tree running as `kernel_uid` (a uid
    nothing else has), else all of them but the runner and its ancestors."""
    pids = tree_pids(token, group)
    if kernel_uid is not None:
        return [pid for pid in pids if process_uid(pid) == kernel_uid]
    keep = _runner_and_ancestors(pids)
    return [pid for pid in pids if pid not in keep]


def kill_submission_processes(token: str, group: Group | None = None, kernel_uid: int | None = None) -> int:
    """SIGKILL the kernel and everything the submission started, leaving the runner (and bwrap around it) alive so
    that it reports the dead kernel and returns what ran. Returns how many processes were signalled."""
    killed = 0
    for _ in range(20):                      # a fork bomb forks while being killed
        pids = kernel_pids(token, group, kernel_uid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        if kernel_uid is None:
            break                            # the runner's children are identified once: do not kill newcomers
        time.sleep(0.02)
    return killed


def disk_usage(root: Path, max_entries: int) -> tuple[int, int]:
    """(bytes allocated on disk, number of entries) under root, symlinks not followed; stops counting after
    max_entries entries (the caller only needs to know the limit was passed)."""
    used, entries, stack = 0, 0, [str(root)]
    while stack:
        try:
            scanner = os.scandir(stack.pop())
        except OSError:
            continue
        with scanner:
            for entry in scanner:
                entries += 1
                if entries >= max_entries:
                    return used, entries
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                used += info.st_blocks * 512  # allocated blocks: a sparse file costs what it really uses
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return used, entries


def kill_run(process: subprocess.Popen, token: str, group: Group | None = None) -> int:
    """Kill the tree's process group and every process of its control group (else every process carrying its
    token); returns how many strays were killed after the process group. Loops because a fork bomb can fork while
    being killed."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if group is not None:
        return group.kill()
    strays = 0
    for _ in range(50):
        pids = processes_with_token(token)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                strays += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
    return strays


def unenforced_limits(requested: str) -> list[str]:
    """One line per limit or protection this machine cannot give a submission in sandbox mode `requested`, saying
    why; [] when everything holds. For grading.log, stderr and the class summary."""
    from autograder.execution import cgroups, workspace

    try:
        mode, why = resolve_mode(requested)
    except (RuntimeError, ValueError) as error:
        return [f"sandbox: {error}"]
    lines = []
    if mode == "none":
        lines.append(f"sandbox: none, so no network cut, no private filesystem view, no seccomp filter and no "
                     f"separate uid ({why})")
    lines += cgroups.support().unenforced()
    ok, why = workspace.mount_check()
    if not ok:
        lines.append(f"disk: the work folder is measured while the notebook runs, so files deleted while still "
                     f"open are not counted ({why})")
    if mode == "bwrap":
        ok, why = seccomp_filter.available()
        if not ok:
            lines.append(f"seccomp: no system-call filter (ptrace, keyctl, bpf, io_uring, mount, unshare... stay "
                         f"allowed) ({why})")
        as_root = os.geteuid() == 0
        if not as_root or shutil.which("setpriv") is None:
            lines.append("separate uids: the kernel runs as the runner's uid, so it can read the runner's files (the "
                         "graded notebook and its config) (" + ("the grader is not root" if not as_root
                                                                else "setpriv is missing") + ")")
        if not as_root and bwrap_version() < (0, 8):
            lines.append("user namespaces: bubblewrap older than 0.8 cannot forbid nested user namespaces")
    return lines
