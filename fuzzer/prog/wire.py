"""The executor's wire format: what the child reads, and nothing else reads.

Little-endian 64-bit words: MAGIC, the number of calls, then seven words a
call: the operation (a syscall number, or a pseudo-call's op, in the low 32
bits; the number of the process that makes the call above them) and six
arguments, with arena offsets already turned into absolute addresses
(process_madvise packs its eight into six: `_process_madvise_words`). Keep in
step with `fuzzer/executor/executor.c`.
"""

from __future__ import annotations

import struct

from fuzzer.prog.program import ARENA, Program
from fuzzer.prog.syscalls import OP_TOUCH, U64, Kind

MAGIC = 0x6D6D_6675_7A7A_0002  # "mmfuzz" v2
TOUCH_READ, TOUCH_WRITE = OP_TOUCH, OP_TOUCH + 1
WORDS_PER_CALL = 7


def _process_madvise_words(args: list[int]) -> list[int]:
    """process_madvise's eight arguments in six words: target | vlen << 32, the two
    iovecs, advice | flags << 32 (both are 32 bits to the kernel: int and unsigned int)."""
    target, base0, len0, base1, len1, vlen, advice, flags = args
    return [target | (vlen & 0xFFFF_FFFF) << 32, base0, len0, base1, len1,
            (advice & 0xFFFF_FFFF) | (flags & 0xFFFF_FFFF) << 32]


def encode(program: Program) -> bytes:
    words = [MAGIC, len(program.calls)]
    for call in program.calls:
        spec = call.syscall
        if spec.op is None:
            op = spec.nr
        else:
            op = spec.op + (call.arg("mode") if call.name == "touch" else 0)
        args = [
            (ARENA.base + value if kind == Kind.ADDR else value) & U64
            for (_, kind), value in zip(spec.args, call.args, strict=True)
        ]
        if call.name == "process_madvise":
            args = _process_madvise_words(args)
        words += [op | call.proc << 32, *args, *[0] * (6 - len(args))]
    return struct.pack(f"<{len(words)}Q", *words)
