"""Operation counts (fuzzer/campaign/ops.py): which keys a step adds, as tables of cases
in the program text format, and how counts add up and group."""

from __future__ import annotations

import pytest

from fuzzer.campaign.ops import NUMBERS, OpCounter, arg_values, op_keys, outcome, summary
from fuzzer.check.program import HUGE_ZERO, MTHP, PMD
from fuzzer.prog import ARENA_BASE, Call, parse
from fuzzer.prog.syscalls import (
    EINVAL,
    ENOMEM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PROT_READ,
    SIGBUS,
    SIGSEGV,
    SYSCALLS,
    Kind,
)
from fuzzer.store import OpCount


def call(text: str) -> Call:
    (c,) = parse(text + "\n").calls
    return c


# (step in program text, its outcome) -> the (what, value) keys besides steps and outcome
KEYS = [
    ("mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)",
     [("prot", "PROT_READ"), ("prot", "PROT_WRITE"), ("flags", "MAP_PRIVATE"),
      ("flags", "MAP_ANONYMOUS"), ("flags", "MAP_POPULATE")]),
    ("mmap(@0, 1p, PROT_NONE, MAP_SHARED_VALIDATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)",
     [("prot", "PROT_NONE"), ("flags", "MAP_SHARED_VALIDATE"), ("flags", "MAP_ANONYMOUS"),
      ("flags", "MAP_FIXED_NOREPLACE")]),
    # unknown bits count one by one, in hex; a missing mapping type is just absent
    ("mmap(@0, 1p, PROT_READ|0x30, MAP_ANONYMOUS|0x800080, -1, 0)",
     [("prot", "PROT_READ"), ("prot", "0x10"), ("prot", "0x20"), ("flags", "MAP_ANONYMOUS"),
      ("flags", "0x80"), ("flags", "0x800000")]),
    ("mprotect(@0, 1p, PROT_READ|PROT_EXEC|PROT_GROWSDOWN)",
     [("prot", "PROT_READ"), ("prot", "PROT_EXEC"), ("prot", "PROT_GROWSDOWN")]),
    ("mlock(@0, 1p)", []),
    ("munlock(@0, 1p)", []),
    ("munmap(@0, 64p)", []),
    ("mlock2(@0, 1p, MLOCK_ONFAULT)", [("flags", "MLOCK_ONFAULT")]),
    ("mlock2(@0, 1p, 0)", [("flags", "0")]),
    ("mlock2(@0, 1p, MLOCK_ONFAULT|0x80000000)", [("flags", "MLOCK_ONFAULT"),
                                                  ("flags", "0x80000000")]),
    ("mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)",
     [("flags", "MCL_CURRENT"), ("flags", "MCL_FUTURE"), ("flags", "MCL_ONFAULT")]),
    ("mlockall(0)", [("flags", "0")]),
    ("munlockall()", []),
    ("mremap(@0, 1p, 2p, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, @8)",
     [("flags", "MREMAP_MAYMOVE"), ("flags", "MREMAP_FIXED"), ("flags", "MREMAP_DONTUNMAP")]),
    ("mremap(@0, 1p, 2p, 0, @0)", [("flags", "0")]),
    # advice is one value, not flags: its name, or the number the text format prints
    ("madvise(@0, 1p, MADV_DONTNEED_LOCKED)", [("advice", "MADV_DONTNEED_LOCKED")]),
    ("madvise(@0, 1p, MADV_NORMAL)", [("advice", "MADV_NORMAL")]),
    ("madvise(@0, 1p, 99)", [("advice", "99")]),
    ("touch(@3, read)", [("mode", "read")]),
    ("touch(@3, write)", [("mode", "write")]),
    ("prlimit_memlock(4p)", []),  # a limit is a number, not a choice
    ("drop_cap_ipc_lock()", []),
]


@pytest.mark.parametrize(("text", "args"), KEYS)
def test_op_keys(text: str, args: list[tuple[str, str]]) -> None:
    c = call(text)
    keys = op_keys(c, "EINVAL")
    assert keys == ((c.name, "steps", ""), *((c.name, w, v) for w, v in args),
                    (c.name, "outcome", "EINVAL"))


def test_every_call_of_the_table_has_a_case() -> None:
    """A call added to the table is counted by the same rules; here, a case for each."""
    tested = {call(text).name for text, _ in KEYS}
    untested = {name for name, spec in SYSCALLS.items() if name not in tested}
    for name in untested:  # calls the table gained since: at least their keys are sound
        spec = SYSCALLS[name]
        keys = op_keys(Call(name, (0,) * len(spec.args)), "ok")
        assert keys[0] == (name, "steps", "") and keys[-1] == (name, "outcome", "ok")
        counted = {w for _, w, _ in keys[1:-1]}
        assert counted == {a for a, kind in spec.args if kind not in NUMBERS}


OUTCOMES = [
    (0, None, "ok"),
    (ARENA_BASE, None, "ok"),  # an address
    (7, None, "ok"),
    (-EINVAL, None, "EINVAL"),
    (-ENOMEM, None, "ENOMEM"),
    (-4095, None, "E4095"),  # the kernel's whole errno range, named or not
    (-4096, None, "ok"),  # not an error: a (wrapped) value
    (None, None, "ok"),  # a touch that did not fault
    (None, (SIGSEGV, 1), "SIGSEGV/MAPERR"),
    (None, (SIGSEGV, 2), "SIGSEGV/ACCERR"),
    (None, (SIGBUS, 2), "SIGBUS/ADRERR"),
]


@pytest.mark.parametrize(("ret", "signal", "expected"), OUTCOMES)
def test_outcome(ret: int | None, signal: tuple[int, int] | None, expected: str) -> None:
    assert outcome(ret, signal) == expected


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (Kind.PROT, 0, ("PROT_NONE",)),
    (Kind.PROT, PROT_READ, ("PROT_READ",)),
    (Kind.MAP, MAP_PRIVATE | MAP_ANONYMOUS, ("MAP_PRIVATE", "MAP_ANONYMOUS")),
    (Kind.MAP, 0x08, ("MAP_DROPPABLE",)),
    (Kind.MAP, 0x04, ("0x4",)),  # a mapping type the table does not name
    (Kind.MAP, 0, ("0",)),
    (Kind.MCL, 1 << 63, ("0x8000000000000000",)),
    (Kind.TOUCH, 7, ("0x7",)),  # no name for it: its value
])
def test_arg_values(kind: Kind, value: int, expected: tuple[str, ...]) -> None:
    assert arg_values(kind, value) == expected


def test_counter_sums_steps_and_hands_over_once() -> None:
    counter = OpCounter()
    program = parse("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n"
                    "mmap(@4, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n"
                    "touch(@0, write)\n")
    first, second, touch = program.calls
    counter.add(first, 0x2000_0000_0000, None)
    counter.add(second, -ENOMEM, None)
    counter.add(touch, None, (SIGSEGV, 2))
    counter.add(first, 0x2000_0000_0000, None)
    assert [op.to_json() for op in counter.take()] == [
        ["mmap", "flags", "MAP_ANONYMOUS", 3],
        ["mmap", "flags", "MAP_PRIVATE", 3],
        ["mmap", "outcome", "ENOMEM", 1],
        ["mmap", "outcome", "ok", 2],
        ["mmap", "prot", "PROT_READ", 3],
        ["mmap", "steps", "", 3],
        ["touch", "mode", "write", 1],
        ["touch", "outcome", "SIGSEGV/ACCERR", 1],
        ["touch", "steps", "", 1],
    ]
    assert counter.take() == []  # taken: nothing counted twice
    counter.add(touch, None, None)
    assert counter.take() == [OpCount("touch", "mode", "write", 1),
                              OpCount("touch", "outcome", "ok", 1),
                              OpCount("touch", "steps", "", 1)]


def test_summary_groups_and_orders() -> None:
    rows = [
        ("touch", "steps", "", 4), ("touch", "mode", "read", 3), ("touch", "mode", "write", 1),
        ("touch", "outcome", "ok", 1), ("touch", "outcome", "SIGSEGV/MAPERR", 3),
        ("mmap", "steps", "", 2), ("mmap", "flags", "MAP_PRIVATE", 2),
        ("mmap", "prot", "PROT_READ", 1), ("mmap", "outcome", "EINVAL", 1),
        ("mmap", "outcome", "ok", 1),
        ("mmap", "steps", "", 1), ("mmap", "outcome", "ok", 1),  # another campaign's rows
        ("zzz_newer_call", "steps", "", 1), ("zzz_newer_call", "outcome", "ok", 1),
    ]
    s = summary(OpCount(*row) for row in rows)
    assert s.steps == 8
    assert list(s.calls) == ["mmap", "touch", "zzz_newer_call"]  # table order, unknown last
    mmap = s.calls["mmap"]
    assert mmap.steps == 3
    assert list(mmap.args) == ["prot", "flags"]  # the call's argument order
    assert mmap.outcomes == {"ok": 2, "EINVAL": 1}
    assert list(s.calls["touch"].outcomes) == ["SIGSEGV/MAPERR", "ok"]  # most frequent first
    assert s.calls["touch"].args == {"mode": {"read": 3, "write": 1}}
    assert "mmap" not in s.not_exercised and "munlockall" in s.not_exercised
    assert set(s.not_exercised) == set(SYSCALLS) - {"mmap", "touch"}


def test_summary_of_nothing() -> None:
    s = summary([])
    assert (s.steps, s.calls, s.not_exercised) == (0, {}, list(SYSCALLS))


def test_large_folio_steps_count_apart() -> None:
    """A step in which the model mapped a large folio (mTHP, docs/SEMANTICS.md §19) also
    counts (call, "folio", "mTHP"), one that mapped a PMD (§22) (call, "folio", "PMD") or
    (call, "folio", "huge zero page"); `stats ops` shows it beside the call's arguments."""
    counter = OpCounter()
    touch, populate = parse("touch(@20, write)\nmadvise(@20, 1p, MADV_POPULATE_WRITE)\n").calls
    counter.add(touch, None, None, MTHP)
    counter.add(touch, None, None)
    counter.add(touch, None, None, PMD)
    counter.add(touch, None, None, HUGE_ZERO)
    counter.add(populate, 0, None, MTHP)
    rows = counter.take()
    assert OpCount("touch", "folio", "mTHP", 1) in rows
    assert OpCount("touch", "folio", "PMD", 1) in rows
    assert OpCount("touch", "folio", "huge zero page", 1) in rows
    assert OpCount("madvise", "folio", "mTHP", 1) in rows
    assert OpCount("touch", "steps", "", 4) in rows
    s = summary(rows)
    assert s.calls["touch"].args["folio"] == {"mTHP": 1, "PMD": 1, "huge zero page": 1}
    assert s.calls["touch"].outcomes == {"ok": 4}
