"""What the kernel did at one program step: the value the supervisor observes and the
oracle judges (pure: no ptrace, no /proc)."""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.prog.program import Call


@dataclass(frozen=True, slots=True)
class Step:
    """One program step as the kernel ran it."""

    index: int  # the call's position in the program
    call: Call
    ret: int | None  # syscall return value, negative errno on failure; None for a touch
    signal: tuple[int, int] | None = None  # (signo, si_code) a touch raised


__all__ = ["Step"]
