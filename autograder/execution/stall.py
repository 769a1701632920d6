"""Noticing a stalled sandbox from the grader's side, within seconds instead of at the cell time limit.

A process tree (a notebook's runner and kernel, or a probe server) is stalled when, continuously:
- one of its processes is stopped (state T or t: SIGSTOP, SIGTSTP, a tracer) for STOPPED_S; nothing the grader runs
  stops a process, so only the submission can have done it;
- one of its processes is in uninterruptible sleep (state D) for BLOCKED_S;
- its control group holds its whole memory limit in memory it cannot give back (anonymous and tmpfs pages: there is
  no swap) while the kernel keeps failing to find room (the group's limit events rise, or on cgroup v2 its memory
  pressure is high) for MEMORY_S: a kernel "silent at its memory limit", thrashing instead of being killed.
The runner notices a kernel that stops answering its heartbeat for as long (runner.py); the watch here also holds
when the runner itself is stuck. The caller kills the stalled processes and reports `kernel_died` with `reason`.
"""
from __future__ import annotations

import time

from autograder.execution import sandbox
from autograder.execution.cgroups import Group

STOPPED_S = 5.0
BLOCKED_S = 20.0
MEMORY_S = 15.0
MEMORY_FULL = 0.95            # of the limit, in anonymous and tmpfs pages
PRESSURE_FULL = 40.0          # cgroup v2: % of the last 10 s every task of the group waited for memory
POLL_S = 0.5
STATE_NAMES = {"T": "stopped (SIGSTOP or SIGTSTP)", "t": "stopped by a tracer", "D": "blocked in uninterruptible sleep"}


def _state(pid: int) -> str:
    fields = sandbox._stat_fields(pid)
    return fields[0] if fields else ""


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.2f} GiB"


class StallWatch:
    """Call `check()` as often as you like (it samples every POLL_S): the reason once stalled, else ""."""

    def __init__(self, token: str, group: Group | None, clock=time.monotonic):
        self.token, self.group, self.clock = token, group, clock
        self.since: dict[tuple[int, str], float] = {}
        self.memory_since: float | None = None
        self.last_events: int | None = None
        self.next_poll = 0.0
        self.reason = ""

    def check(self) -> str:
        now = self.clock()
        if self.reason or now < self.next_poll:
            return self.reason
        self.next_poll = now + POLL_S
        self.reason = self._processes(now) or self._memory(now)
        return self.reason

    def _processes(self, now: float) -> str:
        seen = {}
        for pid in sandbox.tree_pids(self.token, self.group):
            state = _state(pid)
            if state in STATE_NAMES:
                key = (pid, "T" if state in "Tt" else state)
                seen[key] = self.since.get(key, now)
        self.since = seen
        for (pid, state), since in seen.items():
            limit = STOPPED_S if state == "T" else BLOCKED_S
            if now - since >= limit:
                return f"a process of the notebook was {STATE_NAMES[state]} for {now - since:.0f} s"
        return ""

    def _memory(self, now: float) -> str:
        if self.group is None:
            return ""
        state = self.group.memory()
        if not state or not state.get("limit"):
            return ""
        events = state.get("at_limit_events", 0)
        rising = self.last_events is not None and events > self.last_events
        self.last_events = events
        full = state.get("unreclaimable", 0) >= MEMORY_FULL * state["limit"]
        pressed = state.get("pressure", 0.0) >= PRESSURE_FULL
        if full and (rising or pressed):
            self.memory_since = self.memory_since if self.memory_since is not None else now
        elif not full:
            self.memory_since = None
        if self.memory_since is not None and now - self.memory_since >= MEMORY_S:
            return (f"the notebook's processes held their whole memory limit ({_gib(state['unreclaimable'])} of "
                    f"{_gib(state['limit'])}, with /tmp, /dev/shm and the folder's files) for "
                    f"{now - self.memory_since:.0f} s without making room")
        return ""
