"""The executor's fork server, kept by a Supervisor: one fork a program, not one spawn.

`mmfuzz-executor --server` is spawned once (posix_spawn: the fuzzing process
itself is never forked), traced by the thread that spawned it with
PTRACE_O_TRACEFORK, so the child it forks for each program is traced from
birth, just as a program's own forks are. Per program the supervisor writes a
frame (flags, the wire program), takes the child's pid from the server's fork
event and lets the server go on; once the run's processes are gone (the
supervisor has killed them and collected them as their tracer) the server
reaps them (it is their child subreaper) and writes one byte: then no process
of the run is left.

The server dies with the supervisor (PR_SET_PDEATHSIG, PTRACE_O_EXITKILL) and
with `close()`. A server in doubt (it did not fork or answer in time, or the
thread that traces it is not the one running the program) is killed by its pid
and reaped, and the next program starts a fresh one.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import threading
from pathlib import Path

from ptrace.binding import func as pt

from fuzzer.trace import alarm
from fuzzer.trace.ptrace_abi import (
    PTRACE_EVENT_FORK,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    WALL,
)

EXIT_BAD_INPUT = 90
FLAG_MARKERS = 1  # fuzzer/executor/wire.h: a getppid(result) stop after every call
OPTIONS = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK | PTRACE_O_TRACESECCOMP
ACK_TIMEOUT = 2.0  # seconds the server may take to reap a run's processes
_FLAGS = struct.Struct("<Q")


class ServerError(RuntimeError):
    """The fork server could not be started, or rejected a frame."""


class ForkServer:
    """One `mmfuzz-executor --server` process; `start` forks a traced child per program."""

    def __init__(self, executor: Path, thp_advised: bool = False, files: str = "") -> None:
        """`thp_advised`: the server leaves THP to MADV_HUGEPAGE VMAs instead of turning it
        off (`Features.thp_except_advised`, executor.c thp_off). `files`: the directory
        tmpfile makes its files in (probe.files_dir; none: tmpfile is ENOENT)."""
        self.executor = executor
        self._argv = [str(executor), "--server", *(["--thp-advised"] if thp_advised else []),
                      *(["--files", files] if files else [])]
        self.pid = 0
        self._tid = 0  # the thread that traces the server
        self._frames = self._acks = -1
        self._pending = False  # a frame written whose fork event is not yet taken
        self._running = False  # a child forked whose tree the server has not acked
        self.child = 0  # the last child forked, until its tree is acked

    def _spawn(self) -> None:
        prog_r, prog_w = os.pipe()
        ack_r, ack_w = os.pipe()
        try:
            self.pid = os.posix_spawn(
                str(self.executor), self._argv, {},
                file_actions=[(os.POSIX_SPAWN_DUP2, prog_r, 0), (os.POSIX_SPAWN_DUP2, ack_w, 1),
                              (os.POSIX_SPAWN_CLOSE, prog_w), (os.POSIX_SPAWN_CLOSE, ack_r)])
        except BaseException:
            for fd in (prog_r, prog_w, ack_r, ack_w):
                os.close(fd)
            raise
        os.close(prog_r)
        os.close(ack_w)
        self._frames, self._acks = prog_w, ack_r
        self._tid = threading.get_native_id()
        try:
            _, status = os.waitpid(self.pid, WALL)
            if not os.WIFSTOPPED(status) or os.WSTOPSIG(status) != signal.SIGSTOP:
                if not os.WIFSTOPPED(status):
                    self.pid = 0  # reaped: its pid is not ours to signal any more
                raise ServerError(
                    f"the executor's fork server did not start (status {status:#x})")
            pt.ptrace_setoptions(self.pid, OPTIONS)
            pt.ptrace_cont(self.pid, 0)
        except BaseException:  # not started, or interrupted: no half-started server kept
            self.close()
            raise

    def ready(self) -> None:
        """Make sure a server traced by this thread is there (before the run's budget)."""
        if self.pid and self._tid != threading.get_native_id():
            self.close()  # ptrace requests only work from the tracing thread
        if not self.pid:
            self._spawn()

    def start(self, wire: bytes, flags: int) -> int:
        """Fork a child for the wire program: its pid, the child stopped at birth.
        Raises ServerError if the server rejects the frame."""
        frame = _FLAGS.pack(flags) + wire
        status = self._offer(frame)
        if status is None or os.WIFSIGNALED(status):
            # It died since the last program (killed): its pipe is closed, or, while it
            # was dying (a SIGKILL lands late), still took the frame and the wait sees
            # its death. A fresh server gets the frame, once.
            if status is None:
                self.close()
            else:
                self._reaped()
            self._spawn()
            status = self._offer(frame)
            if status is None:
                self.close()
                raise ServerError("the executor's fork server closed its pipe at once")
        return self._forked(status)

    def _offer(self, frame: bytes) -> int | None:
        """Write the frame and wait, in the caller's budget (alarm.arm), for what the
        server does with it: its wait status, or None if its pipe is closed."""
        try:
            os.write(self._frames, frame)
        except BrokenPipeError:
            return None
        self._pending = True
        _, status = alarm.waitpid(self.pid, WALL)
        return status

    def _forked(self, status: int) -> int:
        self._pending = False
        if os.WIFSTOPPED(status) and status >> 16 == PTRACE_EVENT_FORK:
            self.child = int(pt.ptrace_geteventmsg(self.pid))
            self._running = True
            pt.ptrace_cont(self.pid, 0)
            return self.child
        rejected = os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_BAD_INPUT
        if os.WIFSTOPPED(status):
            self.close()  # alive, stopped where it should not be: killed and reaped
        else:
            self._reaped()
        raise ServerError("the executor rejected the wire program" if rejected
                          else f"the executor's fork server did not fork (status {status:#x})")

    def settle(self) -> int:
        """After a run: the child forked for it (0 if none), for the caller to kill and
        collect, even if the fork was not yet taken when the run was left. A server
        that does not stop at the fork in time is closed."""
        if not self._pending:
            return self.child
        self._pending = False
        try:
            alarm.arm(ACK_TIMEOUT)
            _, status = alarm.waitpid(self.pid, WALL)
        except Exception:
            self.close()
            return 0
        finally:
            alarm.disarm()
        try:
            return self._forked(status)
        except ServerError:
            return 0

    def done(self) -> None:
        """Wait for the server to have reaped the run's processes (its one byte)."""
        self.child = 0
        if not self._running:
            return
        self._running = False
        ready, _, _ = select.select([self._acks], [], [], ACK_TIMEOUT)
        if not ready or os.read(self._acks, 1) != b"\0":
            self.close()

    def _reaped(self) -> None:
        """The server's end was waited for: its descriptors closed, and its pid, which
        the system may give to another process now, forgotten without a signal."""
        self.pid = 0
        self.close()

    def close(self) -> None:
        """Kill the server by its pid and reap it (its own child, traced by us)."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                while True:
                    os.waitpid(self.pid, WALL)
        for fd in (self._frames, self._acks):
            if fd >= 0:
                os.close(fd)
        self.pid, self._frames, self._acks = 0, -1, -1
        self._pending = self._running = False
        self.child = 0
