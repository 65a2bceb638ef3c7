"""process_madvise against hand-derived expectations (docs/SEMANTICS.md §18).

Same table style as `test_model_madvise.py`. Every expectation comes from the
kernel function named in the comment above the row (mm/madvise.c SYSCALL_DEFINE5
process_madvise, process_madvise_remote_valid, vector_madvise, madvise_should_skip;
lib/iov_iter.c __import_iovec), not from running the model.
`test_model_pmadvise_kernel.py` runs the same table on the real kernel.

Syntax: `process_madvise(TARGET, ADDR0, LEN0, ADDR1, LEN1, VLEN, ADVICE, FLAGS)`;
the executor opens TARGET's pidfd (pidfd_open), passes the two iovecs (more than
two: zero-length ones) and closes the pidfd.
"""

from __future__ import annotations

import pytest

from fuzzer.model import State, covers
from fuzzer.model.features import NEWEST
from fuzzer.model.world import World
from fuzzer.model.world import step as world_step
from fuzzer.prog import Call, parse
from fuzzer.prog.generate import ByteSource, generate
from fuzzer.prog.program import ProgramError
from fuzzer.prog.text import ParseError
from tests.tables import Case, case, check_model, check_table, model_params

RW = "PROT_READ|PROT_WRITE"
POP = "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE"
FS = "MAP_SHARED|MAP_FIXED"
SELF_ANY = {"pmadv_self_any": True}
SELF_FOUR = {"pmadv_self_any": False}

ROWS = [
    # ------------------------------------------------------------- the syscall's checks
    # flags other than 0 first (unsigned int: the upper half of the register is dropped);
    # iovec_from_user: vlen past UIO_MAXIOV is EINVAL, and copy_iovec_from_user refuses a
    # length negative as ssize_t (EINVAL, before access_ok could say EFAULT), one iovec
    # or two; vlen 0 advises nothing, and without a segment not even the advice is
    # looked at (vector_madvise never calls madvise_should_skip)
    case("pmadv-arguments", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_COLD, 1)
        process_madvise(p0, @0, 1p, @1, 1p, 1025, MADV_COLD, 0)
        process_madvise(p0, @0, 1p, @1, 0xffffffffffffffff, 2, MADV_COLD, 0)
        process_madvise(p0, @0, 0xfffffffffffff000, @1, 1p, 1, MADV_COLD, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 0, MADV_COLD, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 0, 99, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 2, 99, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_COLD, 4294967296)
        """, ["@0", "-EINVAL", "-EINVAL", "-EINVAL", "-EINVAL", "0", "0", "-EINVAL", "8192"],
        "@0-1 rw-p AA", features=SELF_ANY),
    # the result counts the bytes of the iovecs, not the pages they round to; iovecs
    # past the program's two are empty and skipped (vlen 3, 1024)
    case("pmadv-counts-bytes", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @0, 100, @1, 1p, 2, MADV_COLD, 0)
        process_madvise(p0, @0, 1p, @1, 5, 3, MADV_WILLNEED, 0)
        process_madvise(p0, @0, 2p, @0, 0, 1024, MADV_PAGEOUT, 0)
        process_madvise(p0, @0, 1p, @1, 1p, 1, MADV_COLD, 0)
        """, ["@0", "4196", "4101", "8192", "4096"], "@0-1 rw-p AA"),
    # 6.13+: the caller's own address space takes any advice, each iovec as madvise()
    # takes it
    case("pmadv-self-dontneed", f"""
        mmap(@0, 3p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @0, 1p, @2, 1p, 2, MADV_DONTNEED, 0)
        """, ["@0", "8192"], "@0-2 rw-p .A.", features=SELF_ANY),
    # ... before 6.13, only the four advice it takes for another process
    case("pmadv-self-dontneed-old", f"""
        mmap(@0, 3p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @0, 1p, @2, 1p, 2, MADV_DONTNEED, 0)
        process_madvise(p0, @0, 1p, @2, 1p, 0, MADV_DONTNEED, 0)
        """, ["@0", "-EINVAL", "-EINVAL"], "@0-2 rw-p AAA", features=SELF_FOUR),
    # vector_madvise stops at the first iovec that fails and returns the bytes of those
    # before it; an iovec over a hole is ENOMEM after its mapped part was advised
    # (madvise_walk_vmas); the first iovec failing is that error
    case("pmadv-partial", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @0, 1p, @3, 2p, 2, MADV_DONTNEED, 0)
        process_madvise(p0, @4, 1p, @1, 1p, 2, MADV_DONTNEED, 0)
        process_madvise(p0, @1+1, 1p, @1, 1p, 2, MADV_DONTNEED, 0)
        """, ["@0", "4096", "-ENOMEM", "-EINVAL"], "@0-3 rw-p .AA.", features=SELF_ANY),
    # the first iovec is looked at even when empty (an unaligned one is EINVAL); an empty
    # second one is stepped over by iov_iter_advance, unaligned or not
    case("pmadv-empty-iovecs", f"""
        mmap(@0, 4p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @1+1, 0, @2, 1p, 2, MADV_DONTNEED, 0)
        process_madvise(p0, @1, 0, @2, 1p, 2, MADV_DONTNEED, 0)
        process_madvise(p0, @0, 1p, @3+1, 0, 2, MADV_DONTNEED, 0)
        """, ["@0", "-EINVAL", "4096", "4096"], "@0-3 rw-p .A.A", features=SELF_ANY),
    # ------------------------------------------------------------- another process
    # process_madvise_remote_valid: another address space takes MADV_COLD, MADV_PAGEOUT,
    # MADV_WILLNEED (and MADV_COLLAPSE) only: MADV_DONTNEED is EINVAL before any range
    # is looked at. The parent's MADV_PAGEOUT of the child's memfd page (read, so clean)
    # unmaps and frees it (§16); the child asking about the parent's unmapped @0 is
    # ENOMEM for MADV_COLD
    case("pmadv-remote", f"""
        memfd_create()
        ftruncate(0, 2p)
        fork()
        p1: mmap(@0, 2p, {RW}, {FS}, 0, 0)
        p1: touch(@0, read)
        process_madvise(p1, @0, 1p, @1, 1p, 2, MADV_DONTNEED, 0)
        process_madvise(p1, @0, 2p, @0, 0, 1, MADV_PAGEOUT, 0)
        p1: process_madvise(p0, @0, 1p, @0, 0, 1, MADV_DONTNEED, 0)
        p1: process_madvise(p0, @0, 1p, @0, 0, 1, MADV_COLD, 0)
        """, ["0", "0", "pid", "@0", "-", "-EINVAL", "8192", "-EINVAL", "-ENOMEM"],
        "@0-1 rw-s .."),
    # MADV_COLLAPSE is one of the four another process may be given: EINVAL at the
    # target's first VMA, none of which is large enough for a huge page (§7), after the
    # bytes of an iovec that met no VMA... which is ENOMEM instead, and ends the walk
    case("pmadv-collapse-remote", f"""
        fork()
        p1: mmap(@0, 2p, {RW}, {POP}, -1, 0)
        process_madvise(p1, @0, 2p, @0, 0, 1, MADV_COLLAPSE, 0)
        process_madvise(p1, @4, 1p, @0, 1p, 2, MADV_COLLAPSE, 0)
        p1: process_madvise(p1, @0, 1p, @0, 0, 1, MADV_COLLAPSE, 0)
        """, ["pid", "@0", "-EINVAL", "-ENOMEM", "-EINVAL"], "@0-1 rw-p AA"),
    # the child's private pages, shared with the parent since fork (aN), are left alone
    # by either's MADV_PAGEOUT; anonymous pages stay without swap, and MADV_WILLNEED has
    # nothing to read in
    case("pmadv-remote-anon", f"""
        mmap(@0, 2p, {RW}, {POP}, -1, 0)
        fork()
        p1: touch(@1, write)
        process_madvise(p1, @0, 2p, @0, 0, 1, MADV_PAGEOUT, 0)
        p1: process_madvise(p0, @0, 1p, @1, 1p, 2, MADV_WILLNEED, 0)
        p1: process_madvise(p1, @0, 1p, @0, 0, 1, MADV_DONTNEED, 0)
        """, ["@0", "pid", "-", "8192", "8192", "4096"], "@0-1 rw-p .A", features=SELF_ANY),
    # a grandchild knows its grandparent's pid (fork copies what the parent knew)
    case("pmadv-grandchild", f"""
        mmap(@0, 1p, {RW}, {POP}, -1, 0)
        fork()
        p1: fork()
        p2: process_madvise(p0, @0, 1p, @0, 0, 1, MADV_COLD, 0)
        p2: process_madvise(p1, @0, 1p, @0, 0, 1, MADV_PAGEOUT, 0)
        """, ["@0", "pid", "pid", "4096", "4096"], "@0 rw-p a"),
    # ------------------------------------------------------------- older kernels
    # before 5.10 there is no such syscall
    case("pmadv-enosys", f"""
        mmap(@0, 1p, {RW}, {POP}, -1, 0)
        process_madvise(p0, @0, 1p, @0, 0, 1, MADV_COLD, 0)
        """, ["@0", "-ENOSYS"], "@0 rw-p A", features={"process_madvise": False}),
]


def test_table_shape() -> None:
    check_table(ROWS, at_least=10)


@pytest.mark.parametrize("c", model_params(ROWS))
def test_pmadvise_model(c: Case) -> None:
    check_model(c)


@pytest.mark.parametrize(("text", "message"), [
    # a parent does not know the pid of its grandchild, nor a child the sibling forked
    # after it: nothing told them
    ("fork()\np1: fork()\nprocess_madvise(p2, @0, 1p, @0, 0, 1, MADV_COLD, 0)",
     "p0 does not know the pid of p2"),
    ("fork()\nfork()\np1: process_madvise(p2, @0, 1p, @0, 0, 1, MADV_COLD, 0)",
     "p1 does not know the pid of p2"),
    ("fork()\np1: exit()\nprocess_madvise(p1, @0, 1p, @0, 0, 1, MADV_COLD, 0)",
     "p1 has exited"),
    ("process_madvise(p1, @0, 1p, @0, 0, 1, MADV_COLD, 0)", "p1 is not forked yet"),
    ("process_madvise(p0, @0, 1p, @0, 0, 4294967296, MADV_COLD, 0)", "not a 32-bit count"),
    ("process_madvise(p9, @0, 1p, @0, 0, 1, MADV_COLD, 0)", "at most 4 processes"),
    ("process_madvise(p0, @0, 1p, @0, 0, 1, MADV_HWPOISON, 0)", "unknown advice"),
])
def test_programs_refused(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(text)


def test_text_round_trips() -> None:
    text = ("fork()\n"
            "p1: process_madvise(p0, @0+16, 1p+5, @3, 0xffffffffffffffff, 2, MADV_PAGEOUT, 0)\n"
            "process_madvise(p1, @0, 0, @0, 0, 1025, 99, 1)\n")
    assert parse(text).text() == text


def test_what_is_covered() -> None:
    """MADV_COLLAPSE is predicted (§7); the memory-failure advice is not."""
    assert covers(Call("process_madvise", (1, 0, 4096, 0, 0, 1, 25, 0)))
    assert covers(Call("process_madvise", (1, 0, 4096, 0, 0, 1, 21, 0)))
    assert not covers(Call("process_madvise", (1, 0, 4096, 0, 0, 1, 100, 0)))


def test_generator_makes_process_madvise() -> None:
    """The generator makes process_madvise calls the program checker accepts and the
    model predicts, on the caller and on other processes, with results of every kind."""
    import random

    rng = random.Random(7)
    targets: set[str] = set()
    results: set[str] = set()
    for _ in range(800):
        program = generate(ByteSource(rng.randbytes(400)), covers=covers)
        world = World.start(State(features=NEWEST))
        for call in program.calls:
            pred = world_step(world, call)
            if call.name == "process_madvise":
                targets.add("self" if call.arg("target") == call.proc else "other")
                assert pred.ret is not None
                results.add("ok" if pred.ret >= 0 else str(-pred.ret))
    assert targets == {"self", "other"}
    assert {"ok", "22"} <= results, results


def test_refused_call_is_a_program_error() -> None:
    with pytest.raises(ProgramError):
        parse("fork()\np1: fork()\nprocess_madvise(p2, @0, 1p, @0, 0, 1, MADV_COLD, 0)")


def test_mutations_renumber_the_process_named() -> None:
    """Removing a fork drops its child's calls and those naming it, and numbers the later
    children one down, in the process that calls and in the process named alike; adding
    one numbers them one up."""
    from fuzzer.prog.mutate import _after_removal, _renumber
    from fuzzer.prog.program import Processes, format_call

    program = parse("fork()\n"
                    "fork()\n"
                    "p1: process_madvise(p1, @0, 1p, @0, 0, 1, MADV_COLD, 0)\n"
                    "process_madvise(p1, @0, 1p, @0, 0, 1, MADV_COLD, 0)\n"
                    "p2: process_madvise(p0, @0, 1p, @0, 0, 1, MADV_COLD, 0)\n"
                    "process_madvise(p2, @0, 1p, @0, 0, 1, MADV_PAGEOUT, 0)\n")
    fork, *rest = program.calls
    after = _after_removal(fork, tuple(rest), Processes())
    assert [format_call(c) for c in after] == [
        "fork()",
        "p1: process_madvise(p0, @0, 1p, @0, 0, 1, MADV_COLD, 0)",
        "process_madvise(p1, @0, 1p, @0, 0, 1, MADV_PAGEOUT, 0)",
    ]
    again = _renumber(after, Call("fork", ()), Processes())
    assert [format_call(c) for c in again][1:] == [
        "p2: process_madvise(p0, @0, 1p, @0, 0, 1, MADV_COLD, 0)",
        "process_madvise(p2, @0, 1p, @0, 0, 1, MADV_PAGEOUT, 0)",
    ]
