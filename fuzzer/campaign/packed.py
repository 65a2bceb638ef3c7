"""libFuzzer's inputs in a program search: program text, deflated (pure: no I/O).

libFuzzer keeps every input of its corpus in memory for as long as its worker
runs, and a campaign's worker adds thousands of entries a minute at first (one per
program that reaches a feature first). A program's text is about 780 bytes;
deflated against a dictionary of generated program text (`dictionary()`, the same
in every worker of a version: a seeded generator makes it) it is about 150, so
libFuzzer's copy of the corpus and the inbox of programs waiting for it
(campaign/feedback.py) take a fifth of the memory. Deflating costs about 30 µs a
program, inflating 6, where checking one costs about 3,500.

Only libFuzzer and a worker's inbox hold packed inputs: what crosses a process
(the database, the corpus folder) and what a user sees is text. An input that
does not inflate to text (libFuzzer's first, empty input) is no packed program:
`unpack` says None, and the harness decodes a program from its bytes instead.
"""

from __future__ import annotations

import functools
import random
import zlib

from fuzzer.prog.generate import ByteSource, generate

DICTIONARY_BYTES = 8192  # of sample text: deflate's whole 32 kB window bought 14 bytes an input
UNPACKED_MAX = 1 << 16  # bytes of text an input may inflate to: a program's are 8,192 at most
_RAW = -15  # raw deflate: no zlib header and checksum (6 bytes an input)


@functools.cache
def dictionary() -> bytes:
    """Sample program text, for deflate to find its strings in: the text of 60
    generated programs, the last DICTIONARY_BYTES of it (deflate looks back 32 kB,
    and the strings nearest the end cost the fewest bits)."""
    rng = random.Random(0)
    text = "".join(generate(ByteSource(rng.randbytes(512))).text() for _ in range(60))
    return text.encode()[-DICTIONARY_BYTES:]


def pack(text: bytes) -> bytes:
    """A program's text, deflated against the dictionary."""
    packer = zlib.compressobj(6, zlib.DEFLATED, _RAW, zdict=dictionary())
    return packer.compress(text) + packer.flush()


def unpack(data: bytes) -> bytes | None:
    """The text `pack` made `data` of; None when `data` is not one (it does not inflate,
    it is cut short or followed by more, or it inflates past UNPACKED_MAX)."""
    if not data:
        return None
    unpacker = zlib.decompressobj(_RAW, zdict=dictionary())
    try:
        text = unpacker.decompress(data, UNPACKED_MAX)
    except zlib.error:
        return None
    if unpacker.unconsumed_tail or unpacker.unused_data or not unpacker.eof:
        return None
    return text
