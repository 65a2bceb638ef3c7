"""The program text format (fuzzer/prog/text.py) and the wire encoding (fuzzer/prog/wire.py).

Tables of cases written in the text format: canonical lines that must
round-trip byte for byte, non-canonical lines with the canonical form they
normalise to, bad lines with the `file:line: message` they must produce, and
a Hypothesis property over random in-arena programs.
"""

from __future__ import annotations

import io
import re
import struct
from functools import reduce
from operator import or_
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzer.prog import (
    ARENA_BASE,
    ARENA_SIZE,
    Call,
    ParseError,
    Program,
    format_call,
    format_program,
    parse,
    read_program,
)
from fuzzer.prog import program as program_module
from fuzzer.prog import text as text_module
from fuzzer.prog.program import MAX_CALLS, MAX_PROCS, WRAP_MIN, Processes, check_program
from fuzzer.prog.syscalls import (
    MADV_ADVICE,
    MAP_FLAGS,
    MAP_TYPES,
    MCL_FLAGS,
    MLOCK_FLAGS,
    MREMAP_FLAGS,
    PAGE,
    PROT_FLAGS,
    SYSCALLS,
    TOUCH_MODES,
    U64,
    Kind,
)
from fuzzer.prog.text import MAX_LINE
from fuzzer.prog.wire import MAGIC, TOUCH_READ, TOUCH_WRITE, WORDS_PER_CALL, encode

AP = "MAP_PRIVATE|MAP_ANONYMOUS"
RW = "PROT_READ|PROT_WRITE"

# ------------------------------------------------------- canonical round trip

# One line a case; each must print back exactly as written. Flag order is
# format_flags' order: the mapping type first, then the table's order, then
# the unknown bits as one lower-case hex number.
CANONICAL = [
    # mremap, madvise, mlockall, munlockall: every flag and advice name
    "mremap(@0, 2p, 4p, MREMAP_MAYMOVE|MREMAP_FIXED, @8)",
    "mremap(@0, 2p, 2p, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, @8)",
    "mremap(@0, 0xffffffffffffffff, 1p, 0x8, @0)",
    *[f"madvise(@1, 2p, {name})" for name in MADV_ADVICE],
    "madvise(@1+5, 0, 99)",
    "mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)",
    "mlockall(MCL_ONFAULT|0x8)",
    "mlockall(0)",
    "munlockall()",
    "mseal(@1, 2p, 0)",
    "mseal(@1+5, 0, 1)",
    "process_madvise(p0, @1, 2p, @4+5, 0xffffffffffffffff, 2, MADV_PAGEOUT, 0)",
    "process_madvise(p0, @0, 0, @0, 0, 1025, 99, 4294967296)",
    "fork()",
    "exit()",
    "drop_cap_ipc_lock()",
    "prlimit_memlock(16p)",
    "prlimit_memlock(0)",
    "prlimit_memlock(0xffffffffffffffff)",
    # mmap: every protection name, every mapping type, every MAP_ flag name
    f"mmap(@0, 1p, PROT_NONE, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_READ, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_WRITE, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_EXEC, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_READ|PROT_WRITE|PROT_EXEC, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_READ|PROT_SEM, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_READ|PROT_GROWSDOWN, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_READ|PROT_GROWSUP, {AP}, -1, 0)",
    f"mmap(@0, 1p, PROT_READ|PROT_WRITE|PROT_EXEC|PROT_SEM|PROT_GROWSDOWN|PROT_GROWSUP, {AP}, -1,"
    " 0)",
    f"mmap(@0, 1p, PROT_READ|0x10, {AP}, -1, 0)",
    f"mmap(@0, 1p, 0x80000000, {AP}, -1, 0)",
    f"mmap(@0, 1p, {RW}, MAP_SHARED|MAP_ANONYMOUS, -1, 0)",
    f"mmap(@0, 1p, {RW}, MAP_SHARED_VALIDATE|MAP_ANONYMOUS, -1, 0)",
    f"mmap(@0, 1p, {RW}, MAP_DROPPABLE|MAP_ANONYMOUS, -1, 0)",
    f"mmap(@0, 1p, {RW}, MAP_PRIVATE, -1, 0)",
    f"mmap(@0, 1p, {RW}, MAP_ANONYMOUS, -1, 0)",  # mapping type 0 has no name
    f"mmap(@0, 1p, {RW}, MAP_ANONYMOUS|0x4, -1, 0)",  # nor does type 4
    f"mmap(@0, 1p, {RW}, MAP_ANONYMOUS|MAP_FIXED|0xf, -1, 0)",
    f"mmap(@0, 1p, {RW}, 0, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_FIXED, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_FIXED_NOREPLACE, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE|MAP_NONBLOCK, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_LOCKED, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_NORESERVE, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_GROWSDOWN, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_STACK, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_HUGETLB, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|MAP_DENYWRITE|MAP_EXECUTABLE, -1, 0)",
    f"mmap(@0, 1p, {RW}, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED|MAP_FIXED_NOREPLACE|MAP_POPULATE"
    "|MAP_LOCKED|MAP_NORESERVE|MAP_NONBLOCK|MAP_GROWSDOWN|MAP_STACK|MAP_HUGETLB|MAP_DENYWRITE"
    "|MAP_EXECUTABLE, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|0x800000, -1, 0)",  # unknown bits print as hex, last
    f"mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE|MAP_32BIT|0x800000, -1, 0)",
    f"mmap(@0, 1p, {RW}, {AP}|0xfffffffffe000000, -1, 0)",
    # mmap: fd and offset are plain signed integers
    f"mmap(@0, 1p, {RW}, {AP}, 3, 4096)",
    f"mmap(@0, 1p, {RW}, {AP}, -1, 5)",
    f"mmap(@0, 1p, {RW}, {AP}, 0, -4096)",
    # addresses: @page, @page+bytes (decimal), the arena end
    f"mmap(@3+5, 1p, {RW}, {AP}|MAP_FIXED, -1, 0)",
    f"mmap(@63+4095, 1, {RW}, {AP}, -1, 0)",
    f"mmap(@64, 0, {RW}, {AP}, -1, 0)",
    # lengths: Np, Np+B, B, 0, the whole arena, wrapping lengths in hex
    f"mmap(@0, 64p, {RW}, {AP}, -1, 0)",
    f"mmap(@0, 0xffffffffffffffff, {RW}, {AP}, -1, 0)",
    "munmap(@0, 2p)",
    "munmap(@0, 2p+5)",
    "munmap(@0, 5)",
    "munmap(@0, 0)",
    "munmap(@0, 4095)",
    "munmap(@0, 63p+4095)",
    "munmap(@1+5, 0xffffffffffffffff)",
    "munmap(@3, 0xffffe00000000000)",  # WRAP_MIN, the smallest wrapping length
    "mprotect(@0, 1p, PROT_NONE)",
    "mprotect(@2, 3p, PROT_READ|PROT_WRITE|PROT_EXEC)",
    "mprotect(@0, 1p, PROT_READ|PROT_GROWSDOWN|PROT_GROWSUP)",
    "mprotect(@0, 1p, PROT_READ|0xf0)",
    "mlock(@1+5, 2p)",
    "mlock(@0, 0)",
    "mlock(@0, 0xfffffffffffff000)",
    "munlock(@0, 64p)",
    "munlock(@64, 0)",
    "mlock2(@0, 1p, 0)",
    "mlock2(@0, 1p, MLOCK_ONFAULT)",
    "mlock2(@0, 1p, 0x2)",
    "mlock2(@0, 1p, MLOCK_ONFAULT|0xfffffffffffffffe)",
    "touch(@0, read)",
    "touch(@0, write)",
    "touch(@63+4095, write)",
    "memfd_create()",
    "tmpfile()",
    "ftruncate(0, 1p+5)",
    "ftruncate(3, 0)",
    "ftruncate(0, 4095)",
    "ftruncate(-1, 0xffffffffffffffff)",
    "close(0)",
    "close(4294967296)",
    "mmap(@0, 2p, PROT_READ, MAP_PRIVATE|MAP_FIXED, 0, 8192)",
]

MULTI_LINE = [
    f"mmap(@0, 4p, {RW}, {AP}|MAP_FIXED|MAP_POPULATE, -1, 0)\nmlock(@1+5, 2p)\ntouch(@3, write)\n",
    "touch(@0, read)\n" * MAX_CALLS,
]


@pytest.mark.parametrize("line", CANONICAL)
def test_canonical_line_round_trips(line: str) -> None:
    text = line + "\n"
    assert format_program(parse(text)) == text
    (call,) = parse(text).calls
    assert format_call(call) == line


@pytest.mark.parametrize("line", CANONICAL)
def test_kept_lines_and_texts_equal_fresh_ones(line: str) -> None:
    """parse_call keeps each line's Call and format_call each Call's text (a campaign
    reads the same lines again and again): a kept one is what a fresh parse or format
    gives, the second time too."""
    fresh = text_module.parse_call.__wrapped__(line)
    assert text_module.parse_call(line) == fresh
    assert text_module.parse_call(line) is text_module.parse_call(line)
    assert format_call(fresh) == program_module.format_call.__wrapped__(fresh) == line
    assert format_call(fresh) == line


@pytest.mark.parametrize("text", MULTI_LINE, ids=["three-calls", "max-calls"])
def test_canonical_program_round_trips(text: str) -> None:
    assert format_program(parse(text)) == text


def test_canonical_table_uses_every_call_and_flag() -> None:
    """The table above must keep covering every name the format knows."""
    joined = "\n".join(CANONICAL)
    for name in [*SYSCALLS, *PROT_FLAGS, *MAP_TYPES, *MAP_FLAGS, *MLOCK_FLAGS, *MCL_FLAGS,
                 *MREMAP_FLAGS, *MADV_ADVICE, "PROT_NONE"]:
        assert re.search(rf"\b{name}\b", joined), name
    for mode in TOUCH_MODES:
        assert f", {mode})" in joined


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("mlock(@3+5, 2p+5)", (3 * PAGE + 5, 2 * PAGE + 5)),
        ("mlock(@64, 0)", (ARENA_SIZE, 0)),
        ("mlock(@0, 0xffffffffffffffff)", (0, U64)),
        ("mlock(@0, 0xffffe00000000000)", (0, WRAP_MIN)),
        ("mlock2(@0, 1p, MLOCK_ONFAULT|0x2)", (0, PAGE, 3)),
        (f"mmap(@0, 1p, PROT_READ, {AP}|0x800000, -1, 0)", (0, PAGE, 1, 0x800022, -1, 0)),
        (f"mmap(@0, 1p, PROT_NONE, {AP}|MAP_FIXED_NOREPLACE, -1, 0)", (0, PAGE, 0, 0x100022, -1,
                                                                        0)),
        ("touch(@2, write)", (2 * PAGE, 1)),
    ],
)
def test_parsed_values(line: str, args: tuple[int, ...]) -> None:
    assert parse(line).calls == (Call(line.split("(")[0], args),)


# ----------------------------------------------------- non-canonical inputs

NORMALISED = [
    ("mlock(@1+0x10, 1p)", "mlock(@1+16, 1p)\n"),
    ("mlock(@1+0, 1p)", "mlock(@1, 1p)\n"),
    ("mlock(@0, 0x2000)", "mlock(@0, 2p)\n"),
    ("mlock(@0, 4096)", "mlock(@0, 1p)\n"),
    ("mlock(@0, 2p+4096)", "mlock(@0, 3p)\n"),
    ("mlock(@0, 2p+0x10)", "mlock(@0, 2p+16)\n"),
    ("mlock(@0, 0p+5)", "mlock(@0, 5)\n"),
    ("mlock(@0, 0p)", "mlock(@0, 0)\n"),
    ("mlock(@0, 18446744073709551615)", "mlock(@0, 0xffffffffffffffff)\n"),
    ("mlock(@0, 0xFFFFFFFFFFFFFFFF)", "mlock(@0, 0xffffffffffffffff)\n"),
    ("  mlock( @1 ,   2p )  ", "mlock(@1, 2p)\n"),
    ("mlock(@1,2p)", "mlock(@1, 2p)\n"),
    ("\tmlock(@1, 2p)\t", "mlock(@1, 2p)\n"),
    ("mprotect(@0, 1p, PROT_WRITE|PROT_READ)", f"mprotect(@0, 1p, {RW})\n"),
    ("mprotect(@0, 1p, PROT_READ | PROT_WRITE)", f"mprotect(@0, 1p, {RW})\n"),
    ("mprotect(@0, 1p, PROT_NONE|PROT_READ)", "mprotect(@0, 1p, PROT_READ)\n"),
    ("mprotect(@0, 1p, PROT_READ|PROT_READ)", "mprotect(@0, 1p, PROT_READ)\n"),
    ("mprotect(@0, 1p, 0)", "mprotect(@0, 1p, PROT_NONE)\n"),
    ("mprotect(@0, 1p, 0x3)", f"mprotect(@0, 1p, {RW})\n"),
    ("mprotect(@0, 1p, PROT_READ|0x10|0x20)", "mprotect(@0, 1p, PROT_READ|0x30)\n"),
    (f"mmap(@0, 1p, {RW}, MAP_ANONYMOUS|MAP_PRIVATE, -1, 0)", f"mmap(@0, 1p, {RW}, {AP}, -1, 0)\n"),
    (f"mmap(@0, 1p, {RW}, MAP_PRIVATE|0x20, -1, 0)", f"mmap(@0, 1p, {RW}, {AP}, -1, 0)\n"),
    (f"mmap(@0, 1p, {RW}, 0x22, -0x1, 0x1000)", f"mmap(@0, 1p, {RW}, {AP}, -1, 4096)\n"),
    (f"mmap(@0, 1p, {RW}, MAP_SHARED|MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
     f"mmap(@0, 1p, {RW}, MAP_SHARED_VALIDATE|MAP_ANONYMOUS, -1, 0)\n"),
    (f"mmap(@0, 1p, {RW}, MAP_LOCKED|MAP_POPULATE|{AP}, -1, 0)",
     f"mmap(@0, 1p, {RW}, {AP}|MAP_POPULATE|MAP_LOCKED, -1, 0)\n"),
    ("mlock2(@0, 1p, 1)", "mlock2(@0, 1p, MLOCK_ONFAULT)\n"),
    ("mlock2(@0, 1p, 0x0)", "mlock2(@0, 1p, 0)\n"),
    ("mlock2(@0, 1p, 3)", "mlock2(@0, 1p, MLOCK_ONFAULT|0x2)\n"),
    ("p0: mlock(@0, 1p)", "mlock(@0, 1p)\n"),
    ("p0:mlock(@0, 1p)", "mlock(@0, 1p)\n"),
    # comments, blank lines, line endings
    ("# a comment\nmlock(@0, 1p)\n", "mlock(@0, 1p)\n"),
    ("mlock(@0, 1p)  # trailing comment\n", "mlock(@0, 1p)\n"),
    ("mlock(@0, 1p)# no space\n", "mlock(@0, 1p)\n"),
    ("\n\n# one\n  # two, indented\n\nmlock(@0, 1p)\n\n\ntouch(@0, read)\n\n",
     "mlock(@0, 1p)\ntouch(@0, read)\n"),
    ("mlock(@0, 1p)\r\ntouch(@0, read)\r\n", "mlock(@0, 1p)\ntouch(@0, read)\n"),
    ("mlock(@0, 1p)\ntouch(@0, read)", "mlock(@0, 1p)\ntouch(@0, read)\n"),
    ("   \n\t\nmlock(@0, 1p)", "mlock(@0, 1p)\n"),
]


@pytest.mark.parametrize(("text", "canonical"), NORMALISED)
def test_noncanonical_text_normalises(text: str, canonical: str) -> None:
    assert format_program(parse(text)) == canonical
    assert parse(canonical) == parse(text)
    assert format_program(parse(canonical)) == canonical


# ------------------------------------------------------------ parser errors

PATH = "seeds/x.prog"

ERRORS = [
    # (text, line, message substring)
    ("frob(@0, 1p)", 1, "unknown call 'frob'"),
    ("mbind(1)", 1, "unknown call 'mbind'"),
    ("madvise(@0, 1p, 100)", 1, "MADV_HWPOISON) is refused"),
    ("madvise(@0, 1p, 0x100000065)", 1, "MADV_SOFT_OFFLINE) is refused"),
    ("mlock(@0)", 1, "mlock takes 2 arguments, got 1"),
    ("mlock(@0, 1p, 2p)", 1, "mlock takes 2 arguments, got 3"),
    ("mlock()", 1, "mlock takes 2 arguments, got 0"),
    ("touch(@0)", 1, "touch takes 2 arguments, got 1"),
    (f"mmap(@0, 1p, {RW}, {AP}, -1)", 1, "mmap takes 6 arguments, got 5"),
    ("mlock(@0,, 1p)", 1, "mlock takes 2 arguments, got 3"),
    ("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_BOGUS, -1, 0)", 1, "unknown flag 'MAP_BOGUS'"),
    (f"mmap(@0, 1p, PROT_RAED, {AP}, -1, 0)", 1, "unknown flag 'PROT_RAED' for prot"),
    (f"mmap(@0, 1p, MAP_SHARED, {AP}, -1, 0)", 1, "unknown flag 'MAP_SHARED' for prot"),
    ("mlock2(@0, 1p, MAP_LOCKED)", 1, "unknown flag 'MAP_LOCKED' for mlock"),
    ("mlock2(@0, 1p, MLOCK_ONFAULT|)", 1, "unknown flag ''"),
    ("mprotect(@0, 1p, )", 1, "unknown flag ''"),
    ("mlock2(@0, 1p, 0x10000000000000000)", 1, "do not fit in 64 bits"),
    ("mlock(0, 1p)", 1, "bad address '0'"),
    ("mlock(@x, 1p)", 1, "bad address '@x'"),
    ("mlock(@-1, 1p)", 1, "bad address '@-1'"),
    ("mlock(@1-5, 1p)", 1, "bad address '@1-5'"),
    ("mlock(@0x1, 1p)", 1, "bad address '@0x1'"),
    ("mlock(@65, 1p)", 1, "address '@65' is outside the 64-page arena"),
    ("mlock(@1+4096, 1p)", 1, "the byte offset must be below 4096"),
    ("mlock(@64+1, 0)", 1, "outside the 64-page arena"),
    ("touch(@64, read)", 1, "touch address must be inside the arena"),
    ("mlock(@63, 2p)", 1, "runs past the arena end"),
    ("mlock(@63+1, 1p)", 1, "runs past the arena end"),
    ("mlock(@0, 64p+1)", 1, "runs past the arena end"),
    ("mlock(@64, 1)", 1, "runs past the arena end"),
    (f"mmap(@32, 33p, {RW}, {AP}, -1, 0)", 1,
     "mmap: the range of 135168 bytes from @32 runs past the arena end"),
    ("mlock(@0, 0xffffdfffffffffff)", 1, "runs past the arena end"),  # WRAP_MIN - 1
    # a huge campaign's range, read in the 64-page arena: where the bigger one is
    ("mlock(@0, 512p)", 1, "and wrap) (MMFUZZ_ARENA=huge gives 1024 pages)"),
    ("mlock(@0, 0x10000000000000000)", 1, "length '0x10000000000000000' does not fit in 64 bits"),
    ("mlock(@0, 1q)", 1, "bad length '1q'"),
    ("mlock(@0, -1)", 1, "bad length '-1'"),
    ("mlock(@0, p)", 1, "bad length 'p'"),
    ("mlock(@0, )", 1, "bad length ''"),
    ("touch(@0, exec)", 1, "bad touch mode 'exec'"),
    ("touch(@0, READ)", 1, "bad touch mode 'READ'"),
    ("touch(@0, 1)", 1, "bad touch mode '1'"),
    (f"mmap(@0, 1p, {RW}, {AP}, fd, 0)", 1, "bad integer 'fd'"),
    (f"mmap(@0, 1p, {RW}, {AP}, -1, 1p)", 1, "bad integer '1p'"),
    ("mlock(@0, 1p", 1, "cannot read 'mlock(@0, 1p' as a call"),
    ("MLOCK(@0, 1p)", 1, "cannot read"),
    ("mlock (@0, 1p)", 1, "cannot read"),
    ("mlock", 1, "cannot read"),
    ("p1: mlock(@0, 1p)", 1, "p1 is not forked yet"),
    ("fork()\np2: touch(@0, read)", 2, "p2 is not forked yet"),
    ("fork()\np1: exit()\np1: touch(@0, read)", 3, "p1 has exited"),
    ("exit()\nmunlockall()", 2, "p0 has exited"),
    ("fork()\nfork()\np1: fork()\nfork()", 4, "at most 4 processes"),
    ("p4: munlockall()", 1, "at most 4 processes"),
    # no calls at all: the error belongs to no line
    ("", 0, "program has no calls"),
    ("\n\n", 0, "program has no calls"),
    ("# only a comment\n\n  # and another\n", 0, "program has no calls"),
    # line numbers count every line, comments and blank lines included
    ("mlock(@0, 1p)\n# c\n\nmlock(@x, 1p)\n", 4, "bad address '@x'"),
    ("\n\n# x\nmlock(@0, 1p)\n\n   \nfrob()\n", 7, "unknown call 'frob'"),
    ("# header\n# more header\n\nmlock(@0, 1p)  # ok\nmlock(@0, 1p, 1p)  # bad\n", 5,
     "mlock takes 2 arguments"),
    ("mlock(@0, 1p)\r\n\r\ntouch(@64, read)\r\n", 3, "touch address must be inside"),
    ("touch(@0, read)\n" * 3 + "touch(@0, write\n", 4, "cannot read"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_parse_error(text: str, line: int, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, PATH)
    err = info.value
    assert str(err).startswith(f"{PATH}:{line}: "), str(err)
    assert message in str(err)
    assert (err.path, err.line) == (PATH, line)
    assert message in err.message


def test_parse_error_default_path() -> None:
    with pytest.raises(ParseError, match=r"^<program>:2: unknown call"):
        parse("mlock(@0, 1p)\nfrob()\n")


def test_parse_error_is_a_value_error() -> None:
    """Callers catch ValueError (or ProgramError) without knowing about the text."""
    with pytest.raises(ValueError):
        parse("frob()")


def test_too_many_calls_is_a_parse_error() -> None:
    # The executor rejects more than MAX_CALLS calls (exit 90, "the executor
    # rejected the wire program"), so the parser should say so first.
    with pytest.raises(ParseError, match=f"at most {MAX_CALLS}"):
        parse("touch(@0, read)\n" * (MAX_CALLS + 1), PATH)


def test_integer_argument_past_64_bits_is_a_parse_error() -> None:
    # fd 2**64 + 1 parses and wire.encode silently sends 1 to the kernel.
    with pytest.raises(ParseError):
        parse(f"mmap(@0, 1p, {RW}, {AP}, 18446744073709551617, 0)", PATH)


# ------------------------------------------------------------- wire format


def _words(data: bytes) -> list[int]:
    assert len(data) % 8 == 0
    return list(struct.unpack(f"<{len(data) // 8}Q", data))


def test_wire_layout() -> None:
    program = parse(
        f"mmap(@2, 4p, {RW}, {AP}|MAP_FIXED|MAP_POPULATE, -1, 0)\n"
        "munmap(@3+5, 1p)\n"
        "mprotect(@2, 1p, PROT_READ)\n"
        "mlock(@1+5, 2p)\n"
        "munlock(@64, 0)\n"
        "mlock2(@0, 0xffffffffffffffff, MLOCK_ONFAULT)\n"
        "touch(@5+7, read)\n"
        "touch(@63+4095, write)\n"
    )
    data = encode(program)
    assert len(data) == 8 * (2 + WORDS_PER_CALL * 8)
    words = _words(data)
    assert words[:2] == [MAGIC, 8]
    b = ARENA_BASE
    expected = [
        [9, b + 2 * PAGE, 4 * PAGE, 3, 0x8032, 0xFFFF_FFFF_FFFF_FFFF, 0],
        [11, b + 3 * PAGE + 5, PAGE, 0, 0, 0, 0],
        [10, b + 2 * PAGE, PAGE, 1, 0, 0, 0],
        [149, b + PAGE + 5, 2 * PAGE, 0, 0, 0, 0],
        [150, b + ARENA_SIZE, 0, 0, 0, 0, 0],
        [325, b, U64, 1, 0, 0, 0],
        [TOUCH_READ, b + 5 * PAGE + 7, 0, 0, 0, 0, 0],
        [TOUCH_WRITE, b + 63 * PAGE + 4095, 1, 0, 0, 0, 0],
    ]
    got = [words[2 + i * WORDS_PER_CALL: 2 + (i + 1) * WORDS_PER_CALL] for i in range(8)]
    assert got == expected


def test_wire_constants() -> None:
    assert MAGIC == 0x6D6D_6675_7A7A_0002
    assert MAGIC.to_bytes(8, "big")[:6] == b"mmfuzz"
    assert (TOUCH_READ, TOUCH_WRITE, WORDS_PER_CALL) == (1000, 1001, 7)
    assert ARENA_BASE % PAGE == 0
    assert ARENA_BASE + ARENA_SIZE <= 1 << 47  # user space on x86-64 (4-level paging)
    # The touch op numbers must never collide with a syscall a program makes.
    assert {TOUCH_READ, TOUCH_WRITE}.isdisjoint(s.nr for s in SYSCALLS.values())


def test_wire_constants_match_the_executor() -> None:
    """wire.py and executor.c must agree on every shared number."""
    folder = Path(__file__).parents[1] / "fuzzer" / "executor"
    source = "".join((folder / name).read_text() for name in ("executor.c", "wire.h"))
    defines = dict(re.findall(r"^#define\s+(\w+)\s+(\w+)", source, re.M))
    assert int(defines["MAGIC"].rstrip("ULul"), 0) == MAGIC
    assert int(defines["WORDS"]) == WORDS_PER_CALL
    assert int(defines["TOUCH_READ"]) == TOUCH_READ
    assert int(defines["TOUCH_WRITE"]) == TOUCH_WRITE
    assert int(defines["MAX_CALLS"]) == MAX_CALLS


def test_wire_uses_absolute_addresses_only_for_addr_arguments() -> None:
    # A length that equals an arena offset must not be relocated.
    (call,) = parse(f"mmap(@1, 1p, {RW}, {AP}, 4096, 4096)").calls
    words = _words(encode(Program((call,))))
    assert words[2:9] == [9, ARENA_BASE + PAGE, PAGE, 3, 0x22, PAGE, PAGE]


# -------------------------------------------------------------- properties


def _flags(table: dict[str, int]) -> st.SearchStrategy[int]:
    named = st.lists(st.sampled_from(sorted(table.values()))).map(lambda b: reduce(or_, b, 0))
    return st.one_of(named, st.integers(0, U64), st.builds(or_, named, st.integers(0, 0xFF)))


FLAG_STRATEGIES = {
    Kind.MCL: _flags(MCL_FLAGS),
    Kind.MREMAP: _flags(MREMAP_FLAGS),
    Kind.MADV: st.one_of(st.sampled_from(sorted(MADV_ADVICE.values())), st.integers(0, U64)),
    Kind.PROT: _flags(PROT_FLAGS),
    Kind.MAP: _flags({**MAP_TYPES, **MAP_FLAGS}),
    Kind.MLOCK: _flags(MLOCK_FLAGS),
}


@st.composite
def calls(draw: st.DrawFn) -> Call:
    name = draw(st.sampled_from(sorted(SYSCALLS)))
    last = ARENA_SIZE - 1 if name == "touch" else ARENA_SIZE
    pages = st.integers(0, last // PAGE).map(lambda p: p * PAGE)
    addr = draw(st.one_of(st.integers(0, last), pages))
    args = []
    for _, kind in SYSCALLS[name].args:
        match kind:
            case Kind.ADDR:
                args.append(addr)
            case Kind.LEN:
                room = ARENA_SIZE - addr
                args.append(draw(st.one_of(
                    st.integers(0, room),
                    st.integers(0, room // PAGE).map(lambda p: p * PAGE),
                    st.integers(WRAP_MIN, U64),
                    st.just(U64),
                )))
            case Kind.TOUCH:
                args.append(draw(st.sampled_from(sorted(TOUCH_MODES.values()))))
            case Kind.INT if name == "process_madvise" and len(args) == 5:  # vlen: 32 bits
                args.append(draw(st.integers(0, 0xFFFF_FFFF)))
            case Kind.INT:
                args.append(draw(st.one_of(st.integers(-(1 << 63), U64), st.sampled_from([-1, 0]))))
            case Kind.PROC:
                args.append(0)  # programs() makes it the caller: a pid every process knows
            case _:
                args.append(draw(FLAG_STRATEGIES[kind]))
    return Call(name, tuple(args))


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """Valid programs: each call is made by a process that is running at that point."""
    procs, out = Processes(), []
    for call in draw(st.lists(calls(), min_size=1, max_size=MAX_CALLS)):
        live = sorted(procs.live)
        if not live or (call.name == "fork" and procs.forks + 1 >= MAX_PROCS):
            break
        proc = live[draw(st.integers(0, len(live) - 1))]
        args = (proc, *call.args[1:]) if call.name == "process_madvise" else call.args
        call = Call(call.name, args, proc)
        procs.check(call)
        out.append(call)
    if not out:
        out.append(Call("munlockall", ()))
    return Program(tuple(out))


@given(programs())
def test_text_round_trips(program: Program) -> None:
    check_program(program)  # the strategy only makes valid programs
    text = format_program(program)
    assert parse(text) == program
    assert format_program(parse(text)) == text


@given(programs())
def test_wire_size_and_header(program: Program) -> None:
    words = _words(encode(program))
    assert words[:2] == [MAGIC, len(program)]
    assert len(words) == 2 + WORDS_PER_CALL * len(program)
    for i, call in enumerate(program.calls):
        base = 2 + i * WORDS_PER_CALL + 1
        for j, (_, kind) in enumerate(call.syscall.args):
            if kind == Kind.ADDR:
                assert words[base + j] == ARENA_BASE + call.args[j]


def test_a_huge_program_file_is_refused_as_it_is_read() -> None:
    # 10 MB of calls: refused at call MAX_CALLS + 1, having read no more than that.
    file = io.StringIO("touch(@0, read)  # a comment\n" * 350_000)
    with pytest.raises(ParseError, match=rf"{PATH}:{MAX_CALLS + 1}: program has more than"):
        read_program(file, PATH)
    assert file.tell() == (MAX_CALLS + 1) * len("touch(@0, read)  # a comment\n")


@pytest.mark.parametrize(("text", "error"), [
    ("x" * 10_000_000, f"{PATH}:1: line longer than {MAX_LINE} characters"),
    ("# a comment\n" * 1000 + "touch(@0, read)\n", None),  # comments are not calls
    ("touch(@0, read)\n" * MAX_CALLS, None),
])
def test_read_program(text: str, error: str | None) -> None:
    file = io.StringIO(text)
    if error is None:
        assert read_program(file, PATH) == text
    else:
        with pytest.raises(ParseError, match=error):
            read_program(file, PATH)
        assert file.tell() <= MAX_LINE + 1
