"""The grader's end of the probe channel: starts the probe server (server.py) and talks to it, one call at a time.

Every call carries a fresh random nonce; an answer counts only when it is the one frame that comes back for that
call with that nonce. A frame with another nonce, a second frame, a frame that is not valid wire format, or a
server that stops or overruns its time is recorded in `findings` (the row's integrity flags) and the call fails.
Frames are read by a thread with a size limit (wire.MAX_FRAME_BYTES); nothing read is ever unpickled.
"""
from __future__ import annotations

import queue
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from autograder.probing import wire

SERVER_FILES = ("server.py", "calls.py", "wire.py")
START_TIMEOUT_S = 90.0
STDERR_TAIL_BYTES = 20_000


class ProbeChannelError(RuntimeError):
    """The server stopped, overran its time or broke the protocol; the message says which."""


@dataclass
class CallResult:
    ok: bool
    value: object = None
    error: str = ""


@dataclass
class ProbeServer:
    process: subprocess.Popen
    findings: list = field(default_factory=list)
    tamper: list = field(default_factory=list)
    watch: Callable[[], str] | None = None     # the sandbox's stall watch (execution/stall.py): a reason once stalled

    def __post_init__(self):
        self._frames: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        self.dead = False

    def _read_exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = self.process.stdout.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read(self) -> None:
        while True:
            try:
                frame = wire.read_frame(self._read_exactly)
            except EOFError:
                self._frames.put(EOFError("the probe server stopped"))
                return
            except wire.WireError as error:
                self._frames.put(error)
                return
            self._frames.put(frame)

    def _drain_stderr(self) -> None:
        kept = 0
        for chunk in iter(lambda: self.process.stderr.read1(1 << 16), b""):
            if kept < STDERR_TAIL_BYTES:
                self._stderr.append(chunk[: STDERR_TAIL_BYTES - kept])
                kept += len(chunk)

    @property
    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write(wire.dumps(message))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            self.dead = True
            raise ProbeChannelError(f"the probe server stopped ({error})") from None

    def _receive(self, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self._frames.get(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
                break
            except queue.Empty:
                stalled = self.watch() if self.watch is not None else ""
                if stalled:
                    self.dead = True
                    raise ProbeChannelError(f"the probe server stalled ({stalled})") from None
                if time.monotonic() >= deadline:
                    self.dead = True
                    raise ProbeChannelError(f"the probe server gave no answer within {timeout:.0f} s") from None
        if isinstance(frame, Exception):
            self.dead = True
            if isinstance(frame, wire.WireError):
                self.findings.append(f"the probe channel carried a malformed frame ({frame}); the remaining probes "
                                     "were not run")
            raise ProbeChannelError(str(frame))
        if not isinstance(frame, dict):
            self.dead = True
            self.findings.append("the probe channel carried a frame that is not an answer")
            raise ProbeChannelError("malformed answer")
        return frame

    def request(self, op: str, message: dict, timeout: float = START_TIMEOUT_S) -> dict:
        """One of the server's set-up steps ("define", "load"); its reply (op "defined" / "loaded")."""
        self._send({"op": op, **message})
        reply = self._receive(timeout)
        if reply.get("op") != op + ("d" if op.endswith("e") else "ed"):
            self.dead = True
            self.findings.append(f"the probe server's answer to '{op}' was not its report")
            raise ProbeChannelError(f"no report for {op}")
        self._note_tamper(reply.get("tamper"))
        return reply

    def _note_tamper(self, tamper) -> None:
        if isinstance(tamper, list):
            new = [str(item)[:200] for item in tamper[:20] if str(item) not in self.tamper]
            self.tamper += new

    def call(self, name: str, args: dict, timeout: float = 60.0) -> CallResult:
        """One call; never raises for what the student's code does (that is CallResult(ok=False))."""
        if self.dead:
            return CallResult(False, error="not run: the probe server had stopped")
        nonce = secrets.token_hex(12)
        started = time.monotonic()
        try:
            self._send({"op": "call", "id": nonce, "call": name, "args": args})
            reply = self._receive(timeout)
        except ProbeChannelError as error:
            return CallResult(False, error=f"ProbeServerError: {error}")
        if reply.get("id") != nonce:
            self.dead = True
            self.findings.append(f"an answer on the probe channel did not belong to the grader's call '{name}'; "
                                 "that answer and the remaining probes were not graded")
            return CallResult(False, error="IntegrityError: the answer did not come from the grader's call")
        self._note_tamper(reply.get("tamper"))
        extra = not self._frames.empty()
        if extra:
            self.dead = True
            self.findings.append(f"the probe channel carried more than one answer for the call '{name}'; they were "
                                 "not graded")
            return CallResult(False, error="IntegrityError: more than one answer for one call")
        if reply.get("ok") is True:
            return CallResult(True, value=reply.get("value"))
        del started
        return CallResult(False, error=str(reply.get("error") or "unknown error")[:500])

    def stop(self, grace_s: float = 2.0) -> None:
        if not self.dead:
            try:
                self._send({"op": "stop"})
            except ProbeChannelError:
                pass
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def spawn(command: list[str], env: dict) -> ProbeServer:
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, start_new_session=True)
    return ProbeServer(process)
