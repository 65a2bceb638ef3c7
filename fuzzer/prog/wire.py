"""The executor's wire format: what the child reads, and nothing else reads.

Little-endian 64-bit words: MAGIC, the number of calls, then seven words a
call: the operation (a syscall number, or TOUCH_READ/TOUCH_WRITE) and six
arguments, with arena offsets already turned into absolute addresses. Keep in
step with `fuzzer/executor/executor.c`.
"""

from __future__ import annotations

import struct

from fuzzer.prog.program import ARENA_BASE, Program
from fuzzer.prog.syscalls import U64, Kind

MAGIC = 0x6D6D_6675_7A7A_0001  # "mmfuzz" v1
TOUCH_READ, TOUCH_WRITE = 1000, 1001
WORDS_PER_CALL = 7


def encode(program: Program) -> bytes:
    words = [MAGIC, len(program.calls)]
    for call in program.calls:
        spec = call.syscall
        touch_op = TOUCH_WRITE if spec.is_pseudo and call.arg("mode") else TOUCH_READ
        op = touch_op if spec.is_pseudo else spec.nr
        args = [
            (ARENA_BASE + value if kind == Kind.ADDR else value) & U64
            for (_, kind), value in zip(spec.args, call.args, strict=True)
        ]
        words += [op, *args, *[0] * (6 - len(args))]
    return struct.pack(f"<{len(words)}Q", *words)
