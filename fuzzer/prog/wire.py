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
from fuzzer.prog.syscalls import OP_TOUCH, SYSCALLS, U64, Kind, Syscall

MAGIC = 0x6D6D_6675_7A7A_0002  # "mmfuzz" v2
TOUCH_READ, TOUCH_WRITE = OP_TOUCH, OP_TOUCH + 1
WORDS_PER_CALL = 7


def _process_madvise_words(args: list[int]) -> list[int]:
    """process_madvise's eight arguments in six words: target | vlen << 32, the two
    iovecs, advice | flags << 32 (both are 32 bits to the kernel: int and unsigned int)."""
    target, base0, len0, base1, len1, vlen, advice, flags = args
    return [target | (vlen & 0xFFFF_FFFF) << 32, base0, len0, base1, len1,
            (advice & 0xFFFF_FFFF) | (flags & 0xFFFF_FFFF) << 32]


def _layout(spec: Syscall) -> tuple[int, tuple[int, ...], int]:
    """A call's wire op, the places of its arguments that are arena offsets, and the place
    of the argument added to the op (touch's mode), or -1."""
    names = [name for name, _ in spec.args]
    return ((spec.nr if spec.op is None else spec.op),
            tuple(k for k, (_, kind) in enumerate(spec.args) if kind == Kind.ADDR),
            names.index("mode") if spec.op == OP_TOUCH else -1)


# Per call name: encode() runs once per program checked, and looking each argument's
# kind up again was about a third of its time.
_LAYOUTS = {name: _layout(spec) for name, spec in SYSCALLS.items()}
_PADDING = [[0] * (6 - n) for n in range(7)]  # a call's unused argument words


def encode(program: Program) -> bytes:
    words = [MAGIC, len(program.calls)]
    base = ARENA.base
    for call in program.calls:
        op, addrs, mode = _LAYOUTS[call.name]
        args = call.args
        if mode >= 0:
            op += args[mode]
        values = [v & U64 for v in args]
        for k in addrs:
            values[k] = (base + args[k]) & U64
        if call.name == "process_madvise":
            values = _process_madvise_words(values)
        words.append(op | call.proc << 32)
        words += values
        words += _PADDING[len(values)]
    return struct.pack(f"<{len(words)}Q", *words)
