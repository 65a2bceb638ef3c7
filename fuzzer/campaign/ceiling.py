"""The C-only ceiling: the kernel work of the product's checked steps, and nothing else.

`fuzzer/executor/ceiling.c` drives the real executor with the very wire programs
the product checked, each for as many steps as the product ran it: the same
spawn, the same ptrace stops and the same /proc reads (of every live process),
with no model, no parsing and no comparison. Its rate is what the product could
reach if the Python side cost nothing; `mmfuzz bench throughput` prints both.
It runs on the CPU this process is pinned to (the affinity is inherited).
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fuzzer.executor import ceiling_path, executor_path
from fuzzer.prog import ARENA, Program
from fuzzer.prog.wire import encode


class CeilingError(RuntimeError):
    """The ceiling program failed (not a kernel finding)."""


@dataclass(frozen=True)
class Ceiling:
    programs: int
    steps: int
    seconds: float
    failures: int  # programs the ceiling could not run as the product did

    @property
    def programs_per_s(self) -> float:
        return self.programs / self.seconds if self.seconds else 0.0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def records(ran: list[tuple[Program, int]]) -> bytes:
    """The ceiling's input: per program, u64 steps, u64 size, the wire program."""
    out = bytearray()
    for program, steps in ran:
        wire = encode(program)
        out += struct.pack("<QQ", steps, len(wire)) + wire
    return bytes(out)


def run_ceiling(ran: list[tuple[Program, int]], budget: float) -> Ceiling:
    """Run the ceiling over `ran` (program, steps) within `budget` seconds."""
    binary, executor = ceiling_path(), executor_path()
    with tempfile.TemporaryDirectory(prefix="mmfuzz-ceiling-") as tmp:
        path = Path(tmp) / "programs"
        path.write_bytes(records(ran))
        try:
            # On timeout, subprocess.run kills the ceiling by its pid; its executors
            # die with it (PR_SET_PDEATHSIG, PTRACE_O_EXITKILL).
            proc = subprocess.run([str(binary), str(executor), str(path), hex(ARENA.base),
                                   str(ARENA.pages)], capture_output=True, text=True,
                                  timeout=budget, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CeilingError(f"the ceiling did not finish within {budget:g} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CeilingError(f"the ceiling exited with status {proc.returncode}: {last}")
    programs, steps, ns, failures = (int(w) for w in proc.stdout.split())
    return Ceiling(programs, steps, ns / 1e9, failures)
