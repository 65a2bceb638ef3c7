"""The ptrace and x86-64 register facts the supervisor, the injector and `inject` share."""

from __future__ import annotations

import signal

WALL = 0x40000000  # waitpid __WALL: threads and clone children too
SYSCALL_TRAP = signal.SIGTRAP | 0x80  # a syscall stop, with PTRACE_O_TRACESYSGOOD
PTRACE_O_TRACESYSGOOD, PTRACE_O_TRACEFORK, PTRACE_O_TRACEVFORK = 0x01, 0x02, 0x04
PTRACE_O_TRACECLONE, PTRACE_O_TRACEEXEC, PTRACE_O_EXITKILL = 0x08, 0x10, 0x100000
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_EVENT_FORK = 1  # status >> 16 of the stop a traced fork makes in the parent
PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE, PTRACE_EVENT_EXEC = 2, 3, 4
PTRACE_EVENT_SECCOMP = 7  # a SECCOMP_RET_TRACE stop: the executor's getppid() marker
OFF_RAX, OFF_RDI, OFF_ORIG_RAX = 10 * 8, 14 * 8, 15 * 8  # offsets in struct user_regs_struct
ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")  # syscall arguments, in order
SYSCALL_INSN_LEN = 2  # 0f 05
U64 = (1 << 64) - 1


def signed(word: int) -> int:
    """A register as the signed long a syscall returns (negative errno on failure)."""
    word &= U64
    return word - (1 << 64) if word >> 63 else word


def is_marker(status: int) -> bool:
    """Whether a waitpid status is a PTRACE_EVENT_SECCOMP stop: the executor's marker."""
    return status & 0xFF == 0x7F and status >> 16 == PTRACE_EVENT_SECCOMP
